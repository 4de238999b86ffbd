"""import_catalog: every item screened as an upload would be, the bookkeeping batched."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from tests._service_world import DOMESTIC, config, image

from trustfeed.custody import Principal, Role
from trustfeed.moderation import Status
from trustfeed.moderation.text import Score
from trustfeed.service import (
    Conflict,
    Forbidden,
    Platform,
    PrescoredClassifier,
    Upload,
    import_catalog,
)

OPERATOR = Principal("app-backend", Role.OPERATOR, DOMESTIC)


class CountingClassifier:
    """A stand-in text model: the caption's length as its score, and how often it ran."""

    name = "counting"
    version = "1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def scores(self, texts: Sequence[str]) -> list[list[Score]]:
        self.calls.append(list(texts))
        return [[Score(self.name, self.version, "length", len(t) / 100)] for t in texts]


def _uploads(n: int) -> list[Upload]:
    return [Upload(i, f"creator-{i % 3}", "pets", 15_000, f"cat video {i % 2}") for i in range(n)]


def _media(upload: Upload) -> bytes:
    return b"not an image" if upload.item_id == 3 else image(upload.item_id)


def test_every_item_ends_with_its_gate_status(tmp_path: Path) -> None:
    platform = Platform.open(config(tmp_path), text_classifiers=[])
    try:
        statuses = import_catalog(platform, OPERATOR, _uploads(7), _media, chunk=3)
        gate = platform.moderation.gate
        # Undecodable media fails closed, exactly as through Platform.upload.
        assert gate.status(3) is Status.NOT_RECOMMENDABLE
        assert statuses == {Status.ELIGIBLE: 6, Status.NOT_RECOMMENDABLE: 1}
        assert all(gate.status(i) is Status.ELIGIBLE for i in (0, 1, 2, 4, 5, 6))
        assert len(platform.catalog) == 7 and platform.media(5) == image(5)
        assert [tr.to_status for tr in gate.history(0)] == [Status.PENDING, Status.ELIGIBLE]
        assert platform.eligibility.eligible == {0, 1, 2, 4, 5, 6}
    finally:
        platform.close()


def test_a_repeated_item_is_refused_and_only_the_operator_imports(tmp_path: Path) -> None:
    platform = Platform.open(config(tmp_path), text_classifiers=[])
    try:
        import_catalog(platform, OPERATOR, _uploads(2), _media)
        with pytest.raises(Conflict):
            import_catalog(platform, OPERATOR, _uploads(2), _media)
        user = Principal("alice", Role.USER, DOMESTIC)
        with pytest.raises(Forbidden):
            import_catalog(platform, user, _uploads(1), _media)
    finally:
        platform.close()


def test_captions_are_scored_once_per_chunk_with_the_same_scores(tmp_path: Path) -> None:
    inner = CountingClassifier()
    scorers = [PrescoredClassifier(inner)]
    platform = Platform.open(config(tmp_path), text_classifiers=scorers)
    try:
        import_catalog(platform, OPERATOR, _uploads(6), _media, scorers=scorers, chunk=3)
        assert len(inner.calls) == 2  # one batched call per chunk of 3, duplicates once
        assert inner.calls[0] == ["cat video 0", "cat video 1"]
        stored = platform.moderation.text_scores
        assert stored is not None
        assert stored.latest(4) == CountingClassifier().scores(["cat video 0"])[0]
    finally:
        platform.close()

"""Importing a whole catalogue: every item screened as an upload is, the bookkeeping batched.

Why: :meth:`Platform.upload` is built for one video at a time: a catalogue
row, the media file, :meth:`Moderation.submit`, the model's item metadata
and an eligibility poll, each in its own transaction. A migration of an
existing catalogue (or a benchmark's 100,000 items) would spend most of an
hour on commits and on one embedding-model call per caption.

What is kept per item, unchanged: :meth:`Moderation.submit` — the gate's
``pending`` upload and every screening step (media hashes against the banks,
caption banks and classifier scores, the uploader's strikes), the gate's
decision and its ledger entries. Nothing here decides a status.

What is batched, per chunk of items:

1. the catalogue rows, in one transaction (:meth:`Catalog.add_many`);
2. the caption classifiers, in one call per model (:class:`PrescoredClassifier`
   wraps each model the screener runs and answers its per-item calls from the
   chunk's batched scores);
3. the model's item metadata, in one :meth:`Recommender.set_items`;
4. the eligibility poll, once per chunk.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import pandas as pd

from trustfeed.custody import Principal, Role
from trustfeed.moderation import Status
from trustfeed.moderation.text import Score, TextClassifier, default_classifiers, normalize
from trustfeed.service._catalog import CatalogItem
from trustfeed.service._errors import Forbidden, ServiceError
from trustfeed.service._platform import Platform

#: Items per chunk: one catalogue transaction, one classifier batch, one set_items.
CHUNK = 1000


@dataclass(frozen=True)
class Upload:
    """One catalogue entry to import; ``uploaded_at`` keeps an existing catalogue's dates."""

    item_id: int
    creator_id: str
    topic: str
    duration_ms: int
    caption: str = ""
    media_type: str = "image/png"
    uploaded_at: float | None = None


class PrescoredClassifier:
    """A text classifier whose scores for a chunk of texts come from one batched call.

    Why: the screener scores one caption per upload, and an embedding model
    scores a batch of 64 in about the time of a few single calls. :meth:`prime`
    runs the wrapped model on the chunk's (normalised) captions; :meth:`scores`
    answers from those, and runs the model itself on anything not primed.
    Name and version are the wrapped model's, so stored scores trace to it.
    """

    def __init__(self, inner: TextClassifier) -> None:
        self.inner = inner
        self.name = inner.name
        self._primed: dict[str, list[Score]] = {}

    @property
    def version(self) -> str:
        return self.inner.version

    def prime(self, texts: Iterable[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._primed]
        if todo:
            self._primed.update(zip(todo, self.inner.scores(todo), strict=True))

    def scores(self, texts: Sequence[str]) -> list[list[Score]]:
        self.prime(texts)
        return [self._primed[t] for t in texts]

    def clear(self) -> None:
        self._primed.clear()


def prescored(classifiers: Sequence[TextClassifier] | None = None) -> list[PrescoredClassifier]:
    """Wrap ``classifiers`` (default: those ``trustfeed serve`` screens with) for an import.

    Pass the result both to :meth:`Platform.open` (``text_classifiers=``) and
    to :func:`import_catalog` (``scorers=``).
    """
    chosen = default_classifiers() if classifiers is None else classifiers
    return [PrescoredClassifier(c) for c in chosen]


def import_catalog(
    platform: Platform,
    principal: Principal,
    uploads: Iterable[Upload],
    media_for: Callable[[Upload], bytes],
    *,
    scorers: Sequence[PrescoredClassifier] = (),
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Counter[Status]:
    """Upload and screen every item (see the module docstring); the count per final status.

    Only the operator imports a catalogue. ``media_for`` gives each item's
    media; ``progress`` is called with the number of items done after each chunk.
    """
    if principal.role is not Role.OPERATOR:
        raise Forbidden("only the operator imports a catalogue")
    done: Counter[Status] = Counter()
    for part in _chunks(uploads, chunk):
        done.update(_import_chunk(platform, part, media_for, scorers))
        if progress is not None:
            progress(done.total())
    return done


def _chunks(uploads: Iterable[Upload], size: int) -> Iterator[list[Upload]]:
    it = iter(uploads)
    while part := list(islice(it, size)):
        yield part


def _import_chunk(
    platform: Platform,
    part: list[Upload],
    media_for: Callable[[Upload], bytes],
    scorers: Sequence[PrescoredClassifier],
) -> list[Status]:
    pseudonyms, now = platform.custody.pseudonyms, time.time()
    items = [
        CatalogItem(
            u.item_id, pseudonyms.item(u.item_id), u.creator_id, u.topic, u.duration_ms,
            u.caption, u.media_type, now if u.uploaded_at is None else u.uploaded_at,
        )
        for u in part
    ]  # fmt: skip
    platform.catalog.add_many(items)
    captions = [normalize(u.caption) for u in part if u.caption]
    for scorer in scorers:
        scorer.prime(captions)
    try:
        statuses = [_screen(platform, u, media_for(u)) for u in part]
    finally:
        for scorer in scorers:
            scorer.clear()
    meta = pd.DataFrame({
        "item_id": [i.pseudonym for i in items],
        "creator_id": [platform.catalog.creator_index(i.creator_id) for i in items],
        "topic": [i.topic for i in items],
        "published_at": [i.uploaded_at for i in items],
    })  # fmt: skip
    with platform.model_lock:
        platform.model.set_items(meta)
    platform.sync_eligibility()
    return statuses


def _screen(platform: Platform, upload: Upload, media: bytes) -> Status:
    """What :meth:`Platform.upload` does per item: keep the media, then submit it."""
    if not media:
        raise ServiceError(f"the media of item {upload.item_id} is empty")
    (platform.media_dir / str(upload.item_id)).write_bytes(media)
    return platform.moderation.submit(
        upload.item_id, media, uploader=upload.creator_id, caption=upload.caption
    )

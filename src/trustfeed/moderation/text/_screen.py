"""Screening one text: bank matches first, then classifier thresholds.

How a verdict is reached:

1. the text is normalised (:func:`normalize`, :func:`skeleton`);
2. every active text bank is matched; if any entry matches (and no
   allow-list bank does), the most severe bank action is the verdict,
   recorded as the bank's rule;
3. otherwise every classifier scores the text, and each
   :class:`ClassifierRule` whose score reaches its threshold asks for its
   action; the most severe wins;
4. no match and no rule fired means "no objection" (None), which the gate
   reads as eligible only when no other step objects.

Scores are computed even when a bank matched, so the report is complete.
Reasons name banks, entries and models, never the offending words: they go
to the ledger.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from trustfeed.moderation._gate import Clock, Verdict
from trustfeed.moderation._status import SEVERITY, Actor, Status
from trustfeed.moderation.text import _tables as t
from trustfeed.moderation.text._banks import TextBanks, TextMatch
from trustfeed.moderation.text._classifiers import Score, TextClassifier, default_classifiers
from trustfeed.moderation.text._normalize import NORMALIZER_VERSION, normalize, skeleton


@dataclass(frozen=True)
class ClassifierRule:
    """Ask for ``action`` when ``model``'s ``label`` score is at least ``threshold``."""

    model: str
    label: str
    threshold: float
    action: Status

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within 0..1, got {self.threshold}")
        if Status(self.action) in (Status.PENDING, Status.ELIGIBLE):
            raise ValueError(f"a rule's action must restrict the item, not {self.action}")


#: Defaults: confident profanity keeps a caption out of feeds; text very close
#: to a hate or threat example goes to review. Chosen conservatively; the
#: benchmark (benchmarks/bench_text.py) shows the precision/recall trade-off.
DEFAULT_RULES: tuple[ClassifierRule, ...] = (
    ClassifierRule("alt-profanity-check", "offensive", 0.9, Status.NOT_RECOMMENDABLE),
    ClassifierRule("sentence-transformers/all-MiniLM-L6-v2", "hate", 0.8, Status.QUARANTINED),
    ClassifierRule(
        "sentence-transformers/all-MiniLM-L6-v2", "violent_threat", 0.8, Status.QUARANTINED
    ),
    ClassifierRule(
        "sentence-transformers/all-MiniLM-L6-v2", "harassment", 0.85, Status.NOT_RECOMMENDABLE
    ),
)


@dataclass(frozen=True)
class TextReport:
    """Everything screening found about one text."""

    text: str
    normalized: str
    skeleton: str
    normalizer_version: str
    bank_matches: list[TextMatch]
    scores: list[Score]
    verdict: Verdict | None
    fired: list[ClassifierRule] = field(default_factory=list)
    #: Allow-list bank matches that set ``bank_matches`` aside (kept for the record).
    suppressed_by: list[TextMatch] = field(default_factory=list)

    def score(self, model: str, label: str) -> float | None:
        """The score of ``model`` for ``label``, or None if it did not run."""
        return next((s.value for s in self.scores if (s.model, s.label) == (model, label)), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``trustfeed moderation screen-text`` prints)."""
        verdict = None
        if self.verdict is not None:
            v = self.verdict
            verdict = {"status": str(v.status), "reason": v.reason, "actor": str(v.actor)}
        return {
            "normalized": self.normalized,
            "skeleton": self.skeleton,
            "normalizer_version": self.normalizer_version,
            "bank_matches": [asdict(m) | {"action": str(m.action)} for m in self.bank_matches],
            "suppressed_by": [asdict(m) | {"action": str(m.action)} for m in self.suppressed_by],
            "scores": [asdict(s) for s in self.scores],
            "verdict": verdict,
        }


class TextScreener:
    """Screens captions and comments; also a gate :class:`ScreeningStep` for captions.

    ``captions`` maps an item id (and its media) to the caption to screen, or
    None when the item has none; the gate calls :meth:`screen`. With a
    ``score_log`` each screened item's scores are stored in SQL.
    """

    name = "text-screen"

    def __init__(
        self,
        *,
        banks: TextBanks | None = None,
        classifiers: Sequence[TextClassifier] | None = None,
        rules: Sequence[ClassifierRule] = DEFAULT_RULES,
        captions: Callable[[int, bytes], str | None] | None = None,
        score_log: TextScoreLog | None = None,
    ) -> None:
        self._banks = banks
        self._classifiers = list(default_classifiers() if classifiers is None else classifiers)
        self._rules = list(rules)
        self._captions = captions
        self._score_log = score_log

    def screen_text(self, text: str) -> TextReport:
        """Steps 1–4 of the module docstring for one text."""
        return self.screen_texts([text])[0]

    def screen_texts(self, texts: Sequence[str]) -> list[TextReport]:
        """Like :meth:`screen_text` for many texts, classifiers batched."""
        normal = [normalize(x) for x in texts]
        scores: list[list[Score]] = [[] for _ in texts]
        for classifier in self._classifiers:
            for mine, theirs in zip(scores, classifier.scores(normal), strict=True):
                mine.extend(theirs)
        return [self._report(x, n, s) for x, n, s in zip(texts, normal, scores, strict=True)]

    def _report(self, text: str, normal: str, scores: list[Score]) -> TextReport:
        banked = self._banks.match_all(text) if self._banks is not None else None
        matches = banked.actionable if banked is not None else []
        fired = [r for r in self._rules if _reaches(r, scores)]
        verdict = _bank_verdict(matches) if matches else _rule_verdict(fired)
        return TextReport(
            text,
            normal,
            skeleton(text),
            NORMALIZER_VERSION,
            matches,
            scores,
            verdict,
            fired,
            banked.suppressed_by if banked is not None else [],
        )

    def screen(self, item_id: int, media: bytes) -> Verdict | None:
        """The gate's step: screen the item's caption, if it has one."""
        caption = self._captions(item_id, media) if self._captions is not None else None
        if not caption:
            return None
        report = self.screen_text(caption)
        if self._score_log is not None:
            self._score_log.record(item_id, report.scores)
        return report.verdict


def _reaches(rule: ClassifierRule, scores: list[Score]) -> bool:
    return any(
        s.model == rule.model and s.label == rule.label and s.value >= rule.threshold
        for s in scores
    )


def _bank_verdict(matches: list[TextMatch]) -> Verdict:
    worst = matches[0]  # TextBanks.match sorts the most severe first
    reason = f"text bank {worst.bank} entry {worst.entry_id} ({worst.kind}) matched"
    return Verdict(worst.action, reason, Actor("rule", f"text-bank:{worst.bank}"))


def _rule_verdict(fired: list[ClassifierRule]) -> Verdict | None:
    if not fired:
        return None
    worst = max(fired, key=lambda r: SEVERITY[Status(r.action)])
    reason = f"text classifier {worst.model} {worst.label} ≥ {worst.threshold}"
    return Verdict(Status(worst.action), reason, Actor("rule", f"text-model:{worst.model}"))


class TextScoreLog:
    """Classifier scores of screened items in SQL, each with its model's name and version."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock
        t.metadata.create_all(engine)

    def record(self, item_id: int, scores: Sequence[Score]) -> None:
        """Store one screening's scores (a re-screen adds rows; history is kept)."""
        at = self._clock()
        rows = [
            {"item_id": item_id, "model": s.model, "version": s.version}
            | {"label": s.label, "value": s.value, "at": at}
            for s in scores
        ]
        if rows:
            with self._engine.begin() as conn:
                conn.execute(t.text_scores.insert(), rows)

    def latest(self, item_id: int) -> list[Score]:
        """The newest score per model and label (what a rule should judge by)."""
        newest = {(s.model, s.label): s for s in self.scores(item_id)}
        return list(newest.values())

    def scores(self, item_id: int) -> list[Score]:
        """Every score stored for an item, oldest first."""
        c = t.text_scores.c
        query = sa.select(c.model, c.version, c.label, c.value).where(c.item_id == item_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(c.id)).all()
        return [Score(r.model, r.version, r.label, float(r.value)) for r in rows]


@functools.cache
def _shared_classifiers() -> tuple[TextClassifier, ...]:
    """The default classifiers, made once per process (their models load on first use)."""
    return tuple(default_classifiers())


def screen_text(text: str, *, banks: TextBanks | None = None) -> TextReport:
    """Screen one text with the default classifiers and rules (and ``banks`` if given).

    The models are loaded once per process and shared by every call.
    """
    return TextScreener(banks=banks, classifiers=_shared_classifiers()).screen_text(text)

"""Moderation rules: signals in, a status and/or a review queue out, with a dry run.

A rule set is versioned JSON validated by pydantic::

    {"format": 1, "version": 3, "rules": [
      {"id": "known-csam", "when": [{"match": {"bank": "csam"}}], "status": "removed"},
      {"id": "profane-caption",
       "when": [{"score": {"name": "text.alt-profanity-check.offensive", "at_least": 0.9}}],
       "status": "not_recommendable", "queue": "hate-text", "priority": 5},
      {"id": "slur-list", "when": [{"match": {"bank": "slurs", "signal": "text"}}],
       "queue": "hate-text"},
      {"id": "repeat-offender", "when": [{"strikes": {"at_least": 3}}], "queue": "creators"}]}

Semantics (why not "first match wins"): every enabled rule whose conditions
all hold fires; the item gets the **most severe** status among them (the first
in order among equals, whose id is the actor ``rule:<id>``), and is queued in
every queue a firing rule names (highest priority per queue). So rule order
only breaks ties and orders reasons: a lenient rule placed early can never
shadow a strict one, which for content security is the failure that matters.
Rules only restrict (no ``eligible`` target) and a set must hold at least one
rule: an empty or permissive file is refused, not silently applied.

A condition on a score that is absent does not hold (the text screener may not
have run); a score that is present but not a number is a :class:`RuleError`,
which the gate turns into "not recommendable" (fail closed).

What rules see (:class:`StoredFacts`): media and video bank matches, text-bank
matches of the stored caption (signal ``"text"``, distance 0), the newest
caption classifier scores as ``text.<model name>.<label>``, and the
uploader's active strikes. A queue name is the review queue the item goes to
(:meth:`ReviewQueue.named`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trustfeed.moderation._errors import ModerationError
from trustfeed.moderation._gate import Gate, Transition, Verdict
from trustfeed.moderation._status import SEVERITY, Actor, Status

if TYPE_CHECKING:
    from trustfeed.moderation._banks import Banks
    from trustfeed.moderation._vpdq import VideoBank
    from trustfeed.moderation.text import Score, TextMatch

#: The rule-file format this module reads.
FORMAT = 1
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class RuleError(ModerationError):
    """A rule file that does not validate, or signals a rule cannot read."""


# ---------------------------------------------------------------------- the rule file
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchCondition(_Strict):
    """Holds when the item matched a positive bank (this one, this signal, this close)."""

    bank: str | None = None
    signal: str | None = None
    max_distance: int | None = Field(default=None, ge=0)


class ScoreCondition(_Strict):
    """Holds when ``signals[name]`` (dotted path) is a number in [at_least, below)."""

    name: str = Field(min_length=1)
    at_least: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> ScoreCondition:
        if self.at_least is None and self.below is None:
            raise ValueError("a score condition needs at_least and/or below")
        return self


class StrikesCondition(_Strict):
    """Holds when the uploader has at least this many active strikes."""

    at_least: int = Field(ge=1)


class Condition(_Strict):
    """Exactly one of ``match``, ``score``, ``strikes``."""

    match: MatchCondition | None = None
    score: ScoreCondition | None = None
    strikes: StrikesCondition | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        if sum(x is not None for x in (self.match, self.score, self.strikes)) != 1:
            raise ValueError("a condition has exactly one of: match, score, strikes")
        return self


class Rule(_Strict):
    """When every condition holds: move the item to ``status`` and/or queue it."""

    id: str
    description: str = ""
    enabled: bool = True
    when: list[Condition] = Field(min_length=1)
    status: Status | None = None
    queue: str | None = Field(default=None, min_length=1, max_length=64)
    priority: int = Field(default=0, ge=0, le=100)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"rule id must match {_ID.pattern}")
        return value

    @model_validator(mode="after")
    def _acts(self) -> Rule:
        if self.status is None and self.queue is None:
            raise ValueError("a rule needs a status, a queue, or both")
        if self.status in (Status.PENDING, Status.ELIGIBLE):
            raise ValueError(f"rules only restrict; {self.status} is not a rule action")
        return self


class RuleSet(_Strict):
    """An ordered, versioned list of rules (``version`` goes into every reason)."""

    format: int = FORMAT
    version: int = Field(ge=1)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> RuleSet:
        if self.format != FORMAT:
            raise ValueError(f"rule file format {self.format} is not supported (want {FORMAT})")
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError("rule ids must be unique")
        return self

    @classmethod
    def from_json(cls, text: str) -> RuleSet:
        """Parse and validate; every problem becomes one :class:`RuleError`."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise RuleError(f"invalid rule set: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> RuleSet:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_defaults=False)


# ---------------------------------------------------------------------- facts and decisions
@dataclass(frozen=True)
class MatchFact:
    """One bank match as rules see it (PDQ/exact: bits; vPDQ: % of frames unmatched)."""

    bank: str
    signal: str
    distance: int
    entry_id: int = 0


@dataclass(frozen=True)
class ItemFacts:
    """Everything rules may look at for one item.

    ``signals`` is open-ended on purpose (say ``{"text": {"toxicity": 0.93}}``)
    so new screeners plug in without a change here.
    """

    item_id: int
    matches: tuple[MatchFact, ...] = ()
    signals: Mapping[str, Any] = field(default_factory=dict)
    strikes: int = 0


@dataclass(frozen=True)
class Routing:
    """A review queue an item goes to, and how urgently."""

    queue: str
    priority: int
    rule_id: str


@dataclass(frozen=True)
class Decision:
    """What a rule set decides for one item: the module docstring's semantics."""

    status: Status | None
    rule_id: str | None
    reason: str
    fired: tuple[str, ...]
    routes: tuple[Routing, ...]

    @property
    def actor(self) -> Actor | None:
        return None if self.rule_id is None else Actor("rule", self.rule_id)

    def verdict(self) -> Verdict | None:
        """The gate's form of the status part (None when no rule sets a status)."""
        actor = self.actor
        if self.status is None or actor is None:
            return None
        return Verdict(self.status, self.reason, actor)


def _lookup(signals: Mapping[str, Any], dotted: str) -> Any:
    """``signals`` at a dotted path, where a key may itself hold dots (a model named
    ``"x/model-1.5"``): at each level the longest key that is present wins.

    >>> _lookup({"text": {"m-1.5": {"hate": 0.2}}}, "text.m-1.5.hate")
    0.2
    """
    value: Any = signals
    parts = dotted.split(".")
    while parts:
        if not isinstance(value, Mapping):
            return None
        cut = next((n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in value), 0)
        if cut == 0:
            return None
        value, parts = value[".".join(parts[:cut])], parts[cut:]
    return value


def _holds(cond: Condition, facts: ItemFacts) -> str | None:
    """Why ``cond`` holds for ``facts`` (a short phrase), or None if it does not."""
    if cond.match is not None:
        m = cond.match
        for f in facts.matches:
            if (
                (m.bank is None or f.bank == m.bank)
                and (m.signal is None or f.signal == m.signal)
                and (m.max_distance is None or f.distance <= m.max_distance)
            ):
                return f"bank {f.bank} ({f.signal}, distance {f.distance})"
        return None
    if cond.score is not None:
        s = cond.score
        value = _lookup(facts.signals, s.name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(f"signal {s.name!r} is not a number: {value!r}")
        ok = (s.at_least is None or value >= s.at_least) and (s.below is None or value < s.below)
        return f"{s.name}={value:g}" if ok else None
    if cond.strikes is None:  # unreachable: Condition._exactly_one
        raise RuleError("a condition has exactly one of: match, score, strikes")
    if facts.strikes >= cond.strikes.at_least:
        return f"{facts.strikes} strikes"
    return None


def _all_hold(conditions: Sequence[Condition], facts: ItemFacts) -> list[str] | None:
    """Why every condition holds, or None at the first that does not."""
    reasons = []
    for cond in conditions:
        why = _holds(cond, facts)
        if why is None:
            return None
        reasons.append(why)
    return reasons


class RuleEngine:
    """Evaluates a rule set; applies decisions through the gate as ``rule:<id>``."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def evaluate(self, facts: ItemFacts) -> Decision:
        """The decision for one item (pure: reads nothing, writes nothing)."""
        fired: list[tuple[Rule, list[str]]] = []
        for rule in self.rules.rules:
            if not rule.enabled:
                continue
            reasons = _all_hold(rule.when, facts)
            if reasons is not None:
                fired.append((rule, reasons))
        acting = [(r, r.status, w) for r, w in fired if r.status is not None]
        status: Status | None = None
        rule_id, reason = None, "no rule fired"
        if acting:
            top, status, because = max(acting, key=lambda rsw: SEVERITY[rsw[1]])
            rule_id = top.id
            reason = f"rule {top.id} (rules v{self.rules.version}): {'; '.join(because)}"
        elif fired:
            rule_id = fired[0][0].id
            reason = f"rule {rule_id} (rules v{self.rules.version}): review only"
        return Decision(
            status, rule_id, reason[:500], tuple(r.id for r, _ in fired), _routes(fired)
        )

    def apply(
        self, gate: Gate, facts: ItemFacts, *, queues: Mapping[str, Enqueuer] | None = None
    ) -> tuple[Decision, list[Transition]]:
        """Evaluate, escalate through the gate, and queue for review.

        Machines only escalate, so a decision less severe than the item's
        status changes nothing (``Gate.escalate``). A route to a queue not in
        ``queues`` is a :class:`RuleError` after the status part is applied.
        """
        decision = self.evaluate(facts)
        moved: list[Transition] = []
        actor = decision.actor
        if decision.status is not None and actor is not None:
            moved = gate.escalate(
                [facts.item_id], decision.status, reason=decision.reason, actor=actor
            )
        for route in decision.routes:
            queue = (queues or {}).get(route.queue)
            if queue is None:
                raise RuleError(f"rule {route.rule_id} routes to unknown queue {route.queue!r}")
            queue.enqueue(
                facts.item_id,
                reason=decision.reason,
                detected_by=Actor("rule", route.rule_id),
                priority=route.priority,
            )
        return decision, moved


def _routes(fired: Sequence[tuple[Rule, list[str]]]) -> tuple[Routing, ...]:
    best: dict[str, Routing] = {}
    for rule, _ in fired:
        if rule.queue is not None and (
            rule.queue not in best or rule.priority > best[rule.queue].priority
        ):
            best[rule.queue] = Routing(rule.queue, rule.priority, rule.id)
    return tuple(best.values())


class Enqueuer(Protocol):
    """A review queue (``ReviewQueue.enqueue`` has this shape)."""

    def enqueue(
        self, item_id: int, *, reason: str, detected_by: Actor, priority: int = 0
    ) -> int: ...


class StrikeCounter(Protocol):
    """Active strikes per creator (``Strikes.count`` has this shape)."""

    def count(self, creator: str) -> int: ...


class CaptionBanks(Protocol):
    """Stored captions and the text banks they match (``TextBanks`` has this shape)."""

    def caption(self, item_id: int) -> str | None: ...

    def match(self, text: str) -> list[TextMatch]: ...


class ScoreSource(Protocol):
    """Stored classifier scores (``TextScoreLog.latest`` has this shape)."""

    def latest(self, item_id: int) -> list[Score]: ...


# ---------------------------------------------------------------------- facts from the store
FactSource = Callable[[int], ItemFacts]


class StoredFacts:
    """Facts from what the store already holds: stored signals matched against the
    banks as they are now, the stored caption matched against the text banks
    as they are now, the newest stored caption scores, extra signals from
    ``signals``, and the uploader's strikes (:meth:`Gate.uploader`).

    Read-only: used by the rule screening step and by the dry run alike.
    """

    def __init__(
        self,
        gate: Gate,
        banks: Banks,
        *,
        videos: VideoBank | None = None,
        signals: Callable[[int], Mapping[str, Any]] | None = None,
        strikes: StrikeCounter | None = None,
        text_banks: CaptionBanks | None = None,
        text_scores: ScoreSource | None = None,
    ) -> None:
        self._gate = gate
        self._banks = banks
        self._videos = videos
        self._signals = signals
        self._strikes = strikes
        self._text_banks = text_banks
        self._text_scores = text_scores

    def __call__(self, item_id: int) -> ItemFacts:
        found = self._banks.match(self._banks.item_signals(item_id)).actionable
        matches = [MatchFact(m.bank, m.signal, m.distance, m.entry_id) for m in found]
        if self._videos is not None and (video := self._videos.item_video(item_id)) is not None:
            vm = self._videos.match(video).actionable
            matches += [MatchFact(m.bank, "vpdq", m.distance, m.entry_id) for m in vm]
        matches += self._text_matches(item_id)
        signals = self._text_signals(item_id)
        signals |= self._signals(item_id) if self._signals is not None else {}
        return ItemFacts(item_id, tuple(matches), signals, self._strike_count(item_id))

    def _text_matches(self, item_id: int) -> list[MatchFact]:
        if self._text_banks is None:
            return []
        caption = self._text_banks.caption(item_id)
        hits = self._text_banks.match(caption) if caption else []
        return [MatchFact(m.bank, "text", 0, m.entry_id) for m in hits]

    def _text_signals(self, item_id: int) -> dict[str, Any]:
        """``{"text": {model: {label: score}}}``, what ``text.<model>.<label>`` reads."""
        if self._text_scores is None:
            return {}
        by_model: dict[str, dict[str, float]] = {}
        for score in self._text_scores.latest(item_id):
            by_model.setdefault(score.model, {})[score.label] = score.value
        return {"text": by_model} if by_model else {}

    def _strike_count(self, item_id: int) -> int:
        if self._strikes is None:
            return 0
        creator = self._gate.uploader(item_id)
        return 0 if creator is None else int(self._strikes.count(creator))


class RuleScreener:
    """The screening step for rules: facts from the store, then :meth:`RuleEngine.evaluate`.

    Put it after the hashing and text steps, which store the signals and
    scores it reads. Its review routes are applied here; its status goes back
    to the gate as a verdict.
    """

    name = "rules"

    def __init__(
        self,
        engine: RuleEngine,
        facts: FactSource,
        *,
        queues: Mapping[str, Enqueuer] | None = None,
    ) -> None:
        self._engine = engine
        self._facts = facts
        self._queues = queues or {}

    def screen(self, item_id: int, media: bytes) -> Verdict | None:
        del media  # rules read stored signals, not bytes
        decision = self._engine.evaluate(self._facts(item_id))
        for route in decision.routes:
            if route.queue not in self._queues:
                raise RuleError(f"rule {route.rule_id} routes to unknown queue {route.queue!r}")
            self._queues[route.queue].enqueue(
                item_id,
                reason=decision.reason,
                detected_by=Actor("rule", route.rule_id),
                priority=route.priority,
            )
        return decision.verdict()


# ---------------------------------------------------------------------- dry run
@dataclass(frozen=True)
class DryRunItem:
    """What the rule set would do to one past item, beside what was done."""

    item_id: int
    current: Status
    last_actor: str
    decision: Decision

    @property
    def would_move(self) -> bool:
        """Whether applying it would change the status (machines only escalate)."""
        new = self.decision.status
        if new is None:
            return False
        return self.current is Status.PENDING or SEVERITY[new] > SEVERITY[self.current]


@dataclass(frozen=True)
class DryRunReport:
    """A dry run over past items; nothing was written to produce it."""

    version: int
    items: list[DryRunItem]

    def summary(self) -> dict[str, Any]:
        """Per rule: items it fired on, items it decided, items it would move; and routes."""
        per_rule: dict[str, dict[str, int]] = {}
        for it in self.items:
            for rid in it.decision.fired:
                row = per_rule.setdefault(rid, {"fired": 0, "decided": 0, "would_move": 0})
                row["fired"] += 1
            if it.decision.status is not None and it.decision.rule_id is not None:
                row = per_rule[it.decision.rule_id]
                row["decided"] += 1
                row["would_move"] += it.would_move
        routes: dict[str, int] = {}
        for it in self.items:
            for r in it.decision.routes:
                routes[r.queue] = routes.get(r.queue, 0) + 1
        moves = sum(it.would_move for it in self.items)
        return {
            "rules_version": self.version,
            "items": len(self.items),
            "would_move": moves,
            "rules": per_rule,
            "queued": routes,
        }

    def to_json(self) -> str:
        rows = [
            {
                "item": it.item_id,
                "current": it.current.value,
                "last_actor": it.last_actor,
                "would_be": None if it.decision.status is None else it.decision.status.value,
                "rule": it.decision.rule_id,
                "fired": list(it.decision.fired),
                "queues": [r.queue for r in it.decision.routes],
                "would_move": it.would_move,
            }
            for it in self.items
        ]
        return json.dumps({"summary": self.summary(), "items": rows}, indent=2)


def dry_run(
    engine: RuleEngine, gate: Gate, facts: FactSource, items: Iterable[int] | None = None
) -> DryRunReport:
    """What ``engine``'s rules would have done to past items, changing nothing.

    Steps: (1) take the listed items, or every item that left ``pending`` or is
    still pending; (2) read each one's facts from stored signals and its
    history (read-only queries only); (3) evaluate — never ``apply`` — and
    report beside the current status and the last actor that decided it.
    """
    if items is None:
        items = gate.items_with_status(list(Status))
    out = []
    for item_id in items:
        history = gate.history(item_id)
        if not history:
            continue
        decision = engine.evaluate(facts(item_id))
        out.append(DryRunItem(item_id, history[-1].to_status, history[-1].actor, decision))
    return DryRunReport(engine.rules.version, out)

"""Review metrics: overturn rate, time in queue, and the match-flood alarm.

Match-flood rule (why: a bank hash that suddenly matches far more than usual
is either a viral bad video or a bad hash — a benign meme added by mistake —
and a person must look before it restricts thousands of items):

1. count each bank entry's matches in the last ``window`` seconds (``now``);
2. count its matches in the ``baseline_windows`` windows before that and
   divide by ``baseline_windows`` (its usual rate per window);
3. alarm when now ≥ ``min_count`` and now ≥ ``factor`` × max(usual, 1).

The floor of 1 means a brand-new hash needs ``max(min_count, factor)``
matches in one window to alarm; ``min_count`` keeps rare hashes quiet.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from trustfeed.moderation import _workflow_tables as w
from trustfeed.moderation._banks import BankMatch, Banks
from trustfeed.moderation._gate import Clock, Verdict


@dataclass(frozen=True)
class OverturnRate:
    """Resolved appeals, how many were overturned, and the rate (None with no appeals)."""

    resolved: int
    overturned: int

    @property
    def rate(self) -> float | None:
        return None if self.resolved == 0 else self.overturned / self.resolved


@dataclass(frozen=True)
class QueueTimes:
    """Seconds from a job's creation to its decision, over decided jobs."""

    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class FloodRule:
    """The match-flood rule of the module docstring."""

    window: float = 3600.0
    baseline_windows: int = 24
    factor: float = 10.0
    min_count: int = 20

    def fires(self, now: int, baseline_total: int) -> bool:
        """Steps 2–3 of the module docstring.

        >>> FloodRule().fires(25, 24), FloodRule().fires(25, 24 * 5), FloodRule().fires(15, 0)
        (True, False, False)
        """
        usual = baseline_total / self.baseline_windows
        return now >= self.min_count and now >= self.factor * max(usual, 1.0)


@dataclass(frozen=True)
class FloodAlarm:
    """A bank entry matching far above its usual rate."""

    bank: str
    entry_id: int
    count: int
    usual_per_window: float


def overturn_rate(engine: sa.Engine, *, since: float | None = None) -> OverturnRate:
    """Share of resolved appeals that were overturned (since ``since``, if given)."""
    a = w.appeals.c
    query = sa.select(a.state, sa.func.count()).where(a.state != "open").group_by(a.state)
    if since is not None:
        query = query.where(a.resolved_at >= since)
    with engine.connect() as conn:
        counts = {state: int(n) for state, n in conn.execute(query)}
    return OverturnRate(sum(counts.values()), counts.get("overturned", 0))


def time_in_queue(engine: sa.Engine, *, since: float | None = None) -> QueueTimes:
    """Median and 90th percentile of decided jobs' time from creation to decision."""
    j = w.review_jobs.c
    query = sa.select(j.decided_at - j.created_at).where(j.decided_at.is_not(None))
    if since is not None:
        query = query.where(j.decided_at >= since)
    with engine.connect() as conn:
        waits = np.array([float(x) for x in conn.execute(query).scalars()])
    if waits.size == 0:
        return QueueTimes(0, None, None)
    return QueueTimes(int(waits.size), float(np.median(waits)), float(np.percentile(waits, 90)))


class MatchLog:
    """Positive bank matches at upload, kept for the flood alarm."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock
        w.metadata.create_all(engine)

    def record(self, item_id: int, matches: Sequence[BankMatch]) -> None:
        """Log one item's positive matches (one row per bank entry)."""
        rows = [
            {"bank": m.bank, "entry_id": m.entry_id, "item_id": item_id, "at": self._clock()}
            for m in matches
        ]
        if rows:
            with self._engine.begin() as conn:
                conn.execute(w.match_log.insert(), rows)

    def alarms(self, rule: FloodRule | None = None) -> list[FloodAlarm]:
        """Step 1 of the module docstring in SQL, then the rule per entry."""
        rule = rule or FloodRule()
        now = self._clock()
        start = now - rule.window
        recent = self._counts(start, now)
        if not recent:
            return []
        baseline = self._counts(start - rule.window * rule.baseline_windows, start)
        return [
            FloodAlarm(bank, entry, n, baseline.get((bank, entry), 0) / rule.baseline_windows)
            for (bank, entry), n in sorted(recent.items())
            if rule.fires(n, baseline.get((bank, entry), 0))
        ]

    def _counts(self, start: float, end: float) -> dict[tuple[str, int], int]:
        m = w.match_log.c
        query = (
            sa.select(m.bank, m.entry_id, sa.func.count())
            .where(m.at >= start, m.at < end)
            .group_by(m.bank, m.entry_id)
        )
        with self._engine.connect() as conn:
            return {(b, int(e)): int(n) for b, e, n in conn.execute(query)}

    def step(self, banks: Banks) -> MatchLoggingStep:
        """A screening step that logs matches; place it after the hash-match step."""
        return MatchLoggingStep(self, banks)


class MatchLoggingStep:
    """Screening step: re-reads the signals the hash step stored and logs positive matches.

    It never objects (returns None): restricting is the hash step's job.
    """

    name = "match-log"

    def __init__(self, log: MatchLog, banks: Banks) -> None:
        self._log = log
        self._banks = banks

    def screen(self, item_id: int, media: bytes) -> Verdict | None:
        result = self._banks.match(self._banks.item_signals(item_id))
        self._log.record(item_id, result.actionable)
        return None

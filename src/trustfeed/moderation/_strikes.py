"""Strikes against creators, their thresholds, and the consequences they carry.

A strike is added when a moderator's decision under a policy marked
``strike`` restricts a creator's item; it is removed when that decision is
overturned on appeal, and it expires after ``ttl_seconds``. The creator is the
item's uploader, as the gate recorded it (``uploader:<id>``).

Consequences (:class:`StrikePolicy`, defaults):

* 3 active strikes → ``quarantine_uploads``: the creator's new uploads start
  ``quarantined`` (hidden until a moderator reviews them) — enforced by
  :class:`StrikeScreener` in the screening pipeline;
* 5 active strikes → ``not_recommendable``: every eligible item of the creator
  is moved to ``not_recommendable`` (stays up, never in feeds) and so are new
  uploads. When an overturn takes the creator back below the threshold, the
  overturning moderator lifts what the strikes rule restricted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.moderation import _tables as t
from trustfeed.moderation import _workflow_tables as w
from trustfeed.moderation._errors import ModerationError
from trustfeed.moderation._gate import Clock, Gate, Verdict
from trustfeed.moderation._status import SEVERITY, Actor, Status

if TYPE_CHECKING:
    from trustfeed.moderation._review import ReviewQueue

#: The actor the gate records for strike consequences.
STRIKES_RULE = Actor("rule", "strikes")


class Consequence(StrEnum):
    """What crossing a threshold does to a creator."""

    QUARANTINE_UPLOADS = "quarantine_uploads"
    NOT_RECOMMENDABLE = "not_recommendable"


_UPLOAD_STATUS = {
    Consequence.QUARANTINE_UPLOADS: Status.QUARANTINED,
    Consequence.NOT_RECOMMENDABLE: Status.NOT_RECOMMENDABLE,
}


def _default_thresholds() -> dict[int, Consequence]:
    return {3: Consequence.QUARANTINE_UPLOADS, 5: Consequence.NOT_RECOMMENDABLE}


@dataclass(frozen=True)
class StrikePolicy:
    """Active-strike counts at which each consequence starts, and how long a strike lasts."""

    thresholds: Mapping[int, Consequence] = field(default_factory=_default_thresholds)
    ttl_seconds: float | None = 90 * 86400.0

    def consequences(self, active: int) -> frozenset[Consequence]:
        """Every consequence whose threshold ``active`` strikes reach.

        >>> sorted(c.value for c in StrikePolicy().consequences(5))
        ['not_recommendable', 'quarantine_uploads']
        >>> StrikePolicy().consequences(2)
        frozenset()
        """
        return frozenset(c for n, c in self.thresholds.items() if active >= n)


@dataclass(frozen=True)
class Strike:
    """One strike, as stored."""

    id: int
    creator: str
    decision_id: int
    item_id: int
    policy_id: str
    at: float
    removed_at: float | None


def items_of(engine: sa.Engine, creator: str) -> list[int]:
    """Every item the gate recorded as uploaded by ``creator``."""
    c = t.transitions.c
    query = sa.select(c.item_id).where(
        c.from_status.is_(None), c.actor == str(Actor("uploader", creator))
    )
    with engine.connect() as conn:
        return sorted(int(i) for i in conn.execute(query).scalars())


class Strikes:
    """Strikes in SQL, each added and removed with a ledger record."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        gate: Gate,
        sink: EntrySink,
        clock: Clock = time.time,
        policy: StrikePolicy | None = None,
    ) -> None:
        self._engine = engine
        self._gate = gate
        self._sink = sink
        self._clock = clock
        self.policy = policy or StrikePolicy()
        w.metadata.create_all(engine)

    def add(self, creator: str, *, decision_id: int, item_id: int, policy_id: str) -> Strike:
        """Record a strike, then apply any consequence the creator now reaches."""
        at = self._clock()
        row = {"creator": creator, "decision_id": decision_id, "item_id": item_id}
        row |= {"policy_id": policy_id, "at": at}
        s = w.strikes.c
        with self._engine.begin() as conn:
            query = sa.select(s.id).where(s.decision_id == decision_id, s.item_id == item_id)
            if conn.execute(query).first() is not None:
                raise ModerationError(f"decision {decision_id} already struck item {item_id}")
            index = self._sink.append(encode_record("moderation_strike", **row, action="add"))
            done = conn.execute(w.strikes.insert().values(**row, ledger_index=index))
            key: Any = done.inserted_primary_key
        self.enforce(creator)
        return Strike(int(key[0]), creator, decision_id, item_id, policy_id, at, None)

    def remove(self, *, decision_id: int, item_id: int, reason: str) -> list[Strike]:
        """Remove the strike a decision gave for an item (an overturn on appeal)."""
        s = w.strikes.c
        where = (s.decision_id == decision_id, s.item_id == item_id, s.removed_at.is_(None))
        at = self._clock()
        with self._engine.begin() as conn:
            found = [_strike(r) for r in conn.execute(sa.select(w.strikes).where(*where))]
            if not found:
                return []
            fields = {"decision_id": decision_id, "item_id": item_id, "reason": reason[:500]}
            self._sink.append(encode_record("moderation_strike", action="remove", at=at, **fields))
            conn.execute(
                w.strikes.update().where(*where).values(removed_at=at, removed_reason=reason[:500])
            )
        return found

    def active(self, creator: str) -> list[Strike]:
        """The creator's strikes that are neither removed nor expired."""
        s = w.strikes.c
        query = sa.select(w.strikes).where(s.creator == creator, s.removed_at.is_(None))
        if self.policy.ttl_seconds is not None:
            query = query.where(s.at > self._clock() - self.policy.ttl_seconds)
        with self._engine.connect() as conn:
            return [_strike(r) for r in conn.execute(query.order_by(s.id))]

    def count(self, creator: str) -> int:
        """How many active strikes the creator has."""
        return len(self.active(creator))

    def consequences(self, creator: str) -> frozenset[Consequence]:
        """What the creator's active strikes currently impose."""
        return self.policy.consequences(self.count(creator))

    def enforce(self, creator: str) -> list[int]:
        """Demote the creator's eligible items if ``not_recommendable`` applies; moved ids."""
        if Consequence.NOT_RECOMMENDABLE not in self.consequences(creator):
            return []
        reason = f"creator {creator} has {self.count(creator)} active strikes"
        moved = self._gate.escalate(
            items_of(self._engine, creator),
            Status.NOT_RECOMMENDABLE,
            reason=reason,
            actor=STRIKES_RULE,
        )
        return [m.item_id for m in moved]

    def lift(self, creator: str, *, moderator: str) -> list[int]:
        """Undo what the strikes rule restricted once the creator is below its threshold.

        Only a moderator may move items back to eligible (the gate's table),
        so the one resolving the appeal does it, and it is recorded as theirs.
        """
        if Consequence.NOT_RECOMMENDABLE in self.consequences(creator):
            return []
        restricted = [
            i
            for i in items_of(self._engine, creator)
            if self._gate.status(i) is Status.NOT_RECOMMENDABLE
            and self._gate.history(i)[-1].actor == str(STRIKES_RULE)
        ]
        reason = f"strike consequence lifted: creator {creator} is below the threshold"
        moved = self._gate.decide_many(
            restricted, Status.ELIGIBLE, reason=reason, actor=Actor("moderator", moderator)
        )
        return [m.item_id for m in moved]

    def screener(self, queue: ReviewQueue | None = None) -> StrikeScreener:
        """The screening step that applies consequences to new uploads."""
        return StrikeScreener(self, queue)


class StrikeScreener:
    """Screening step: uploads of creators over a threshold start restricted.

    With a review queue, a quarantined upload is also queued for review, so a
    person looks at it instead of it staying hidden for ever.
    """

    name = "strikes"

    def __init__(self, strikes: Strikes, queue: ReviewQueue | None = None) -> None:
        self._strikes = strikes
        self._queue = queue

    def screen(self, item_id: int, media: bytes) -> Verdict | None:
        creator = self._strikes._gate.uploader(item_id)
        if creator is None:
            return None
        found = self._strikes.consequences(creator)
        if not found:
            return None
        status = max((_UPLOAD_STATUS[c] for c in found), key=SEVERITY.__getitem__)
        reason = f"creator {creator} has {self._strikes.count(creator)} active strikes"
        if self._queue is not None and status is Status.QUARANTINED:
            self._queue.enqueue(item_id, reason=reason, detected_by=STRIKES_RULE)
        return Verdict(status, reason, STRIKES_RULE)


def _strike(row: sa.Row[Any]) -> Strike:
    m: Any = row._mapping
    removed = m["removed_at"]
    return Strike(
        int(m["id"]),
        m["creator"],
        int(m["decision_id"]),
        int(m["item_id"]),
        m["policy_id"],
        float(m["at"]),
        None if removed is None else float(removed),
    )

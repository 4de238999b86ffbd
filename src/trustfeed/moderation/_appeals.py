"""Appeals: a restricted item's creator asks for a second look, by someone else.

Rules (DSA Article 20 asks for an internal complaint-handling system whose
decisions are not taken solely by automated means):

1. an appeal targets the transition that currently restricts the item, so
   automated restrictions (bank matches, rules) can be appealed as well as
   moderators' decisions; one open appeal per item;
2. the appeal is resolved by a moderator, never the one who took the
   appealed decision (refused with :class:`AppealRefused`), and an assigned
   appeal only by its assignee;
3. ``overturned`` really reverses the action: the gate moves the item back to
   ``eligible`` (as the resolving moderator), the feeds may serve it again,
   the strike the decision gave is removed and any strike consequence the
   creator no longer reaches is lifted; ``upheld`` changes nothing;
4. filing and resolving are each appended to the ledger before their SQL commit;
   an overturn's gate transition commits in the same transaction as the
   appeal's resolution (:meth:`Gate.begin`), so neither exists without the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.moderation import _workflow_tables as w
from trustfeed.moderation._gate import Clock, Gate, Transition
from trustfeed.moderation._status import Actor, Status
from trustfeed.moderation._strikes import Strikes
from trustfeed.moderation._workflow_errors import AppealRefused, UnknownJob

_RESTRICTED = frozenset(
    {Status.AGE_RESTRICTED, Status.NOT_RECOMMENDABLE, Status.QUARANTINED, Status.REMOVED}
)


class Outcome(StrEnum):
    """How an appeal ends."""

    UPHELD = "upheld"
    OVERTURNED = "overturned"


@dataclass(frozen=True)
class Appeal:
    """One appeal, as stored; ``state`` is ``open`` or an :class:`Outcome`."""

    id: int
    item_id: int
    transition_id: int
    decision_id: int | None
    decided_by: str
    appellant: str
    statement: str
    state: str
    filed_at: float
    assigned_to: str | None
    resolved_by: str | None
    resolved_at: float | None
    note: str | None


class Appeals:
    """Appeals in SQL; overturns go through the gate, everything into the ledger."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        gate: Gate,
        sink: EntrySink,
        clock: Clock = time.time,
        strikes: Strikes | None = None,
    ) -> None:
        self._engine = engine
        self._gate = gate
        self._sink = sink
        self._clock = clock
        self._strikes = strikes
        w.metadata.create_all(engine)

    def file(self, item_id: int, *, appellant: str, statement: str) -> Appeal:
        """Step 1: appeal the transition that restricts ``item_id`` now."""
        who = str(Actor("uploader", appellant))
        last = self._gate.history(item_id)[-1] if self._gate.history(item_id) else None
        if last is None or last.to_status not in _RESTRICTED:
            raise AppealRefused(f"item {item_id} is not restricted; there is nothing to appeal")
        with self._engine.begin() as conn:
            a = w.appeals.c
            open_ = sa.select(a.id).where(a.item_id == item_id, a.state == "open")
            if conn.execute(open_).first() is not None:
                raise AppealRefused(f"item {item_id} already has an open appeal")
            row = {"item_id": item_id, "transition_id": last.id, "appellant": who}
            row |= {"decision_id": _decision_of(conn, last), "decided_by": last.actor}
            row |= {"statement": statement[:2000], "state": "open", "filed_at": self._clock()}
            self._sink.append(encode_record("moderation_appeal_filed", **row))
            key: Any = conn.execute(w.appeals.insert().values(**row)).inserted_primary_key
        return self.get(int(key[0]))

    def assign(self, appeal_id: int, moderator: str) -> Appeal:
        """Step 2: route the appeal to a moderator other than the decider."""
        appeal = self.get(appeal_id)
        who = _reviewer(appeal, moderator)
        with self._engine.begin() as conn:
            conn.execute(
                w.appeals.update()
                .where(w.appeals.c.id == appeal_id, w.appeals.c.state == "open")
                .values(assigned_to=who)
            )
        return self.get(appeal_id)

    def resolve(
        self, appeal_id: int, *, moderator: str, outcome: Outcome, note: str = ""
    ) -> Appeal:
        """Steps 2–4: decide the appeal; an overturn makes the item eligible again."""
        outcome, appeal = Outcome(outcome), self.get(appeal_id)
        who = _reviewer(appeal, moderator)
        if appeal.assigned_to not in (None, who):
            raise AppealRefused(f"appeal {appeal_id} is assigned to {appeal.assigned_to}")
        if appeal.state != "open":
            raise AppealRefused(f"appeal {appeal_id} was already resolved ({appeal.state})")
        with self._gate.begin() as conn:  # steps 3-4: the resolution and the reversal together
            self._close(conn, appeal, who, outcome, note)
            if outcome is Outcome.OVERTURNED:
                reason = f"appeal {appeal_id} overturned" + (f": {note}" if note else "")
                mod = Actor("moderator", moderator)
                self._gate.decide(
                    appeal.item_id, Status.ELIGIBLE, reason=reason, actor=mod, conn=conn
                )
        if outcome is Outcome.OVERTURNED:
            self._undo_strikes(appeal, moderator)
        return self.get(appeal_id)

    def _close(
        self, conn: sa.Connection, appeal: Appeal, who: str, outcome: Outcome, note: str
    ) -> None:
        """Resolve the appeal in ``conn`` if it is still open and the item has not moved.

        A compare-and-set on ``state``, so two moderators resolving at once
        cannot both win; the staleness check reads inside the same transaction.
        """
        if self._gate.history(appeal.item_id, conn=conn)[-1].id != appeal.transition_id:
            raise AppealRefused(f"item {appeal.item_id} changed since the appeal was filed")
        at, note = self._clock(), note[:1000]
        a = w.appeals.c
        done = conn.execute(
            w.appeals.update()
            .where(a.id == appeal.id, a.state == "open")
            .values(state=outcome, resolved_by=who, resolved_at=at, note=note)
        )
        if done.rowcount != 1:
            raise AppealRefused(f"appeal {appeal.id} was already resolved")
        fields = {"appeal": appeal.id, "item": appeal.item_id, "outcome": outcome}
        fields |= {"resolved_by": who, "decided_by": appeal.decided_by, "note": note}
        self._sink.append(encode_record("moderation_appeal_resolved", at=at, **fields))

    def _undo_strikes(self, appeal: Appeal, moderator: str) -> None:
        if self._strikes is None or appeal.decision_id is None:
            return
        reason = f"decision overturned on appeal {appeal.id}"
        self._strikes.remove(decision_id=appeal.decision_id, item_id=appeal.item_id, reason=reason)
        creator = self._gate.uploader(appeal.item_id)
        if creator is not None:
            self._strikes.lift(creator, moderator=moderator)

    def get(self, appeal_id: int) -> Appeal:
        """The appeal ``appeal_id``; :class:`UnknownJob` if there is none."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(w.appeals).where(w.appeals.c.id == appeal_id)).first()
        if row is None:
            raise UnknownJob(f"no appeal {appeal_id}")
        return _appeal(row)

    def open_appeals(self) -> list[Appeal]:
        """Appeals waiting for a moderator, oldest first."""
        query = sa.select(w.appeals).where(w.appeals.c.state == "open")
        with self._engine.connect() as conn:
            return [_appeal(r) for r in conn.execute(query.order_by(w.appeals.c.id))]


def _reviewer(appeal: Appeal, moderator: str) -> str:
    """The appeal reviewer's actor string, refusing the moderator who decided."""
    who = str(Actor("moderator", moderator))
    if who == appeal.decided_by:
        raise AppealRefused(
            f"{moderator} took the appealed decision; an appeal goes to a different moderator"
        )
    return who


def _decision_of(conn: sa.Connection, transition: Transition) -> int | None:
    """The review decision that made ``transition`` (None for automated ones)."""
    d = w.decision_items.c
    query = sa.select(d.decision_id).where(d.transition_id == transition.id)
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def _appeal(row: sa.Row[Any]) -> Appeal:
    m: Any = row._mapping
    return Appeal(
        int(m["id"]),
        int(m["item_id"]),
        int(m["transition_id"]),
        None if m["decision_id"] is None else int(m["decision_id"]),
        m["decided_by"],
        m["appellant"],
        m["statement"],
        m["state"],
        float(m["filed_at"]),
        m["assigned_to"],
        m["resolved_by"],
        None if m["resolved_at"] is None else float(m["resolved_at"]),
        m["note"],
    )

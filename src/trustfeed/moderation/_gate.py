"""The eligibility gate: item statuses, their transitions, and what the engine may serve.

Invariant (ARCHITECTURE 5): only items whose status is ``eligible`` may reach
candidate retrieval. The gate keeps that true by construction:

1. an upload starts ``pending``, which is not eligible;
2. a status changes only through :meth:`Gate.decide`, which checks the
   transition table (``_status``), writes the SQL row and the history row, and
   appends the transition to the ledger, all before the SQL commit — a
   transition the ledger did not take does not happen. A caller whose own
   record must commit with the move (a review decision, an appeal's
   resolution) opens :meth:`Gate.begin` and passes its connection, so both
   commit together or neither does;
3. screening fails closed: a step that raises moves the item to
   ``not_recommendable`` (recorded, with the error's type as the reason);
4. the engine learns what changed from :class:`EligibilityFeed`, which
   follows the transition history by id, and treats every item it has not
   been told is eligible as blocked.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import sqlalchemy as sa

from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.moderation import _tables as t
from trustfeed.moderation._errors import IllegalTransition, UnknownItem
from trustfeed.moderation._status import SEVERITY, Actor, Status, check_transition

Clock = Callable[[], float]
#: Who records a screening failure (fail closed) and the pipeline's clean outcome.
FAIL_CLOSED = Actor("system", "fail-closed")
NO_MATCH = Actor("rule", "no-match")


@dataclass(frozen=True)
class Transition:
    """One recorded move, as stored in SQL and in the ledger."""

    id: int
    item_id: int
    from_status: Status | None
    to_status: Status
    reason: str
    actor: str
    at: float
    ledger_index: int

    def record(self) -> bytes:
        """The ledger entry: canonical JSON, kind ``moderation_transition``."""
        return _ledger_entry(
            self.item_id, self.from_status, self.to_status, self.reason, self.actor, self.at
        )


@dataclass(frozen=True)
class Verdict:
    """What one screening step decided: the status it asks for, why, and who."""

    status: Status
    reason: str
    actor: Actor


class ScreeningStep(Protocol):
    """One check of an upload (hash match, text screen, …); None means "no objection"."""

    name: str

    def screen(self, item_id: int, media: bytes) -> Verdict | None: ...


def _ledger_entry(
    item: int, old: Status | None, new: Status, reason: str, actor: str, at: float
) -> bytes:
    fields = {"item": item, "from": old, "to": new, "reason": reason, "actor": actor, "at": at}
    return encode_record("moderation_transition", **fields)


class Gate:
    """Statuses in SQL, every move checked, recorded and in the ledger."""

    def __init__(self, engine: sa.Engine, *, sink: EntrySink, clock: Clock = time.time) -> None:
        self._engine = engine
        self._sink = sink
        self._clock = clock
        t.metadata.create_all(engine)

    # ------------------------------------------------------------------ writes
    def begin(self) -> contextlib.AbstractContextManager[sa.Connection]:
        """One SQL transaction on the gate's store, to pass as ``conn=`` to the writes.

        Why: a decision recorded beside the gate (review, appeal) must commit
        with its transition; two transactions would let a crash between them
        leave one without the other.
        """
        return self._engine.begin()

    @contextlib.contextmanager
    def _using(self, conn: sa.Connection | None, *, read: bool = False) -> Iterator[sa.Connection]:
        """The caller's transaction if it passed one (the caller commits), else a new one.

        Reads take ``conn`` too: inside a transaction they must see its own
        writes, and on in-memory SQLite a second connection is the same one.
        """
        if conn is not None:
            yield conn
            return
        with self._engine.connect() if read else self._engine.begin() as own:
            yield own

    def upload(self, item_id: int, *, actor: Actor, reason: str = "uploaded") -> Transition:
        """Register a new item as ``pending``; a second upload of one id is refused."""
        with self._engine.begin() as conn:
            if self._current(conn, item_id) is not None:
                raise IllegalTransition(f"item {item_id} was already uploaded")
            return self._write(conn, item_id, None, Status.PENDING, reason, actor)

    def decide(
        self,
        item_id: int,
        to: Status,
        *,
        reason: str,
        actor: Actor,
        conn: sa.Connection | None = None,
    ) -> Transition:
        """Move an item to ``to``, if the table lets ``actor`` make that move."""
        return self.decide_many([item_id], to, reason=reason, actor=actor, conn=conn)[0]

    def decide_many(
        self,
        item_ids: Sequence[int],
        to: Status,
        *,
        reason: str,
        actor: Actor,
        conn: sa.Connection | None = None,
    ) -> list[Transition]:
        """One decision for many items in one SQL transaction and one ledger batch.

        All or nothing: one illegal move refuses the whole batch. With ``conn``
        (from :meth:`begin`) the moves commit with the caller's transaction.
        """
        to = Status(to)
        with self._using(conn) as tx:
            moves = []
            for item_id in item_ids:
                old = self._current(tx, item_id)
                if old is None:
                    raise UnknownItem(f"item {item_id} was never uploaded")
                check_transition(old, to, actor)
                moves.append((item_id, old))
            return self._write_many(tx, moves, to, reason, actor)

    def escalate(
        self,
        item_ids: Iterable[int],
        to: Status,
        *,
        reason: str,
        actor: Actor,
        conn: sa.Connection | None = None,
    ) -> list[Transition]:
        """Move the listed items to ``to`` where that is more severe than where they are.

        What automated actions use (bank re-scans, fail-closed): an item
        already at least as restricted is left alone instead of refused.
        """
        to = Status(to)
        with self._using(conn) as tx:
            moves = []
            for item_id in item_ids:
                old = self._current(tx, item_id)
                if old is None or (old is not Status.PENDING and SEVERITY[old] >= SEVERITY[to]):
                    continue
                check_transition(old, to, actor)
                moves.append((item_id, old))
            return self._write_many(tx, moves, to, reason, actor)

    def screen(self, item_id: int, media: bytes, steps: Sequence[ScreeningStep]) -> Status:
        """Run every step on a pending upload and decide; fail closed on any error.

        With no steps nothing is decided and the item stays pending: an empty
        pipeline must not approve everything.
        """
        if self.status(item_id) is not Status.PENDING:
            raise IllegalTransition(f"item {item_id} is not pending; only uploads are screened")
        if not steps:
            return Status.PENDING
        try:
            verdict = _combine([v for s in steps if (v := s.screen(item_id, media)) is not None])
        except Exception as exc:  # fail closed: any failure at all leaves it unservable
            reason = f"screening failed ({type(exc).__name__}); not recommendable until reviewed"
            self.escalate([item_id], Status.NOT_RECOMMENDABLE, reason=reason, actor=FAIL_CLOSED)
            return self.status(item_id)
        if verdict is None:
            names = ", ".join(s.name for s in steps)
            verdict = Verdict(Status.ELIGIBLE, f"no objection from: {names}", NO_MATCH)
        self.escalate([item_id], verdict.status, reason=verdict.reason, actor=verdict.actor)
        return self.status(item_id)

    def _write(
        self,
        conn: sa.Connection,
        item: int,
        old: Status | None,
        new: Status,
        reason: str,
        actor: Actor,
    ) -> Transition:
        return self._write_many(conn, [(item, old)], new, reason, actor)[0]

    def _write_many(
        self,
        conn: sa.Connection,
        moves: Sequence[tuple[int, Status | None]],
        new: Status,
        reason: str,
        actor: Actor,
    ) -> list[Transition]:
        """Step 2 of the module docstring, for a batch: rows, then the ledger, then commit."""
        if not moves:
            return []
        at, who, reason = self._clock(), str(actor), reason[:500]
        for item, old in moves:
            self._set_status(conn, item, old, new, at)
        entries = [_ledger_entry(item, old, new, reason, who, at) for item, old in moves]
        indices = self._sink.append_many(entries)
        done = []
        for (item, old), index in zip(moves, indices, strict=True):
            row: dict[str, Any] = {"item_id": item, "from_status": old, "to_status": new}
            row |= {"reason": reason, "actor": who, "at": at, "ledger_index": index}
            key: Any = conn.execute(t.transitions.insert().values(**row)).inserted_primary_key
            done.append(Transition(int(key[0]), item, old, new, reason, who, at, int(index)))
        return done

    @staticmethod
    def _set_status(
        conn: sa.Connection, item: int, old: Status | None, new: Status, at: float
    ) -> None:
        """Compare-and-set, so two deciders racing on one item cannot both win."""
        if old is None:
            conn.execute(t.items.insert().values(item_id=item, status=new, updated_at=at))
            return
        done = conn.execute(
            t.items.update()
            .where(t.items.c.item_id == item, t.items.c.status == old)
            .values(status=new, updated_at=at)
        )
        if done.rowcount != 1:
            raise IllegalTransition(f"item {item} changed status meanwhile; decide again")

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _current(conn: sa.Connection, item_id: int) -> Status | None:
        row = conn.execute(sa.select(t.items.c.status).where(t.items.c.item_id == item_id)).first()
        return None if row is None else Status(row[0])

    def status(self, item_id: int, *, conn: sa.Connection | None = None) -> Status:
        """The item's status; :class:`UnknownItem` for an id never uploaded."""
        with self._using(conn, read=True) as tx:
            found = self._current(tx, int(item_id))
        if found is None:
            raise UnknownItem(f"item {item_id} was never uploaded")
        return found

    def uploader(self, item_id: int, *, conn: sa.Connection | None = None) -> str | None:
        """Who uploaded the item: the id on its upload transition (None: no uploader's).

        The upload is the one transition from no status, so this needs no
        table of its own and cannot disagree with the recorded history.
        """
        c = t.transitions.c
        query = sa.select(c.actor).where(c.item_id == int(item_id), c.from_status.is_(None))
        with self._using(conn, read=True) as tx:
            actor = tx.execute(query).scalar()
        kind, _, ident = str(actor).partition(":")
        return ident if actor is not None and kind == "uploader" else None

    def is_eligible(self, item_id: int) -> bool:
        """Whether the item may be served; unknown items may not."""
        with self._engine.connect() as conn:
            return self._current(conn, int(item_id)) is Status.ELIGIBLE

    def eligible_items(self) -> frozenset[int]:
        """Every item that may reach candidate retrieval now."""
        query = sa.select(t.items.c.item_id).where(t.items.c.status == Status.ELIGIBLE)
        with self._engine.connect() as conn:
            return frozenset(int(i) for i in conn.execute(query).scalars())

    def not_eligible(self, item_ids: Iterable[int]) -> np.ndarray:
        """The subset of ``item_ids`` that must be blocked (unknown ids included)."""
        ids = np.fromiter((int(i) for i in item_ids), np.int64)
        ok = np.fromiter(self.eligible_items(), np.int64)
        return ids[~np.isin(ids, ok)]

    def history(self, item_id: int, *, conn: sa.Connection | None = None) -> list[Transition]:
        """Every transition of one item, oldest first."""
        query = sa.select(t.transitions).where(t.transitions.c.item_id == item_id)
        with self._using(conn, read=True) as tx:
            return [_transition(r) for r in tx.execute(query.order_by(t.transitions.c.id))]

    def transitions_since(self, cursor: int, limit: int = 100_000) -> list[Transition]:
        """Transitions with an id above ``cursor``, in order (what feeds follow)."""
        query = (
            sa.select(t.transitions)
            .where(t.transitions.c.id > cursor)
            .order_by(t.transitions.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_transition(r) for r in conn.execute(query)]

    def items_with_status(self, statuses: Iterable[Status]) -> list[int]:
        """Item ids currently in any of ``statuses``."""
        wanted = [Status(s).value for s in statuses]
        query = sa.select(t.items.c.item_id).where(t.items.c.status.in_(wanted))
        with self._engine.connect() as conn:
            return [int(i) for i in conn.execute(query.order_by(t.items.c.item_id)).scalars()]


def _transition(row: sa.Row[Any]) -> Transition:
    m: Any = row._mapping
    old = None if m["from_status"] is None else Status(m["from_status"])
    return Transition(
        int(m["id"]),
        int(m["item_id"]),
        old,
        Status(m["to_status"]),
        m["reason"],
        m["actor"],
        float(m["at"]),
        int(m["ledger_index"]),
    )


def _combine(verdicts: list[Verdict]) -> Verdict | None:
    """The most severe verdict wins (the first of equals, so reasons stay stable)."""
    return max(verdicts, key=lambda v: SEVERITY[v.status], default=None)


@dataclass(frozen=True)
class EligibilityChanges:
    """What changed since the last poll: feed ``blocked``/``unblocked`` to the engine."""

    cursor: int
    unblocked: np.ndarray
    blocked: np.ndarray


class EligibilityFeed:
    """The engine's cheap view of the gate: a set kept current by following the history.

    A poll reads only transitions newer than its cursor, so it costs nothing
    when nothing changed. Anything the feed has not seen become eligible is
    blocked: an engine should start with every item blocked, or call
    :meth:`Gate.not_eligible` over its known items once.
    """

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self.cursor = 0
        self.eligible: set[int] = set()

    def poll(self, *, full: bool = False) -> EligibilityChanges:
        """Apply new transitions; return the items that entered and left the eligible set.

        ``full=True`` also re-reads the whole eligible set. Why: on PostgreSQL
        a transaction that took a lower history id can commit after a poll has
        passed that id; a periodic full poll (say each minute) repairs that.
        """
        before = set(self.eligible)
        while batch := self._gate.transitions_since(self.cursor):
            for tr in batch:
                if tr.to_status is Status.ELIGIBLE:
                    self.eligible.add(tr.item_id)
                else:
                    self.eligible.discard(tr.item_id)
            self.cursor = batch[-1].id
        if full:
            self.eligible = set(self._gate.eligible_items())
        return EligibilityChanges(
            self.cursor, _ids(self.eligible - before), _ids(before - self.eligible)
        )


def _ids(values: set[int]) -> np.ndarray:
    return np.array(sorted(values), np.int64)

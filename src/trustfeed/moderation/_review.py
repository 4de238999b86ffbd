"""The human review queue: prioritised jobs, leases, duplicate grouping, decisions.

Why these rules:

* **Duplicates form one job.** The same media uploaded a hundred times is
  reviewed once: a new item joins an open job with the same exact key
  (SHA-256 / MD5 / a caller's media key) or a PDQ hash within
  ``pdq_threshold`` bits, and the decision applies to every item in the job.
* **Named queues.** Each job sits in one queue (``"csam-hash"``,
  ``"hate-text"``, :data:`DEFAULT_QUEUE`), so each team claims only its own
  work (``pending``/``claim_next`` with ``queue=``). An item or media is in at
  most one open job, across queues, so two teams never decide it at once; a
  more urgent route moves the job to its queue (the specialists of the more
  serious signal see it).
* **Exclusive claim with a lease.** A claim holds a job for ``lease_seconds``;
  a second moderator is refused while the lease holds, and a lease that runs
  out returns the job to the queue, so an abandoned claim never strands it.
* **Decisions cite a policy.** :meth:`ReviewQueue.decide` refuses a policy id
  the taxonomy does not document, and one that does not justify the action.
* **Reviewer wellness.** A job view carries media as blurred metadata;
  showing it unblurred is an explicit :meth:`ReviewQueue.reveal`, recorded.

Deciding a job, step by step:

1. check the policy and that it justifies the action;
2. in one SQL transaction (:meth:`Gate.begin`), close the job with a
   compare-and-set that requires the caller's unexpired lease (two deciders
   cannot both win);
3. in it, move every item through :meth:`Gate.decide_many` as the moderator
   (all or nothing);
4. in it, store the decision and the transition of each item, append the
   decision to the ledger, and commit — so a crash or a failure anywhere in
   2–4 leaves the job open and no item moved, and a transition is never
   committed without the decision that cites its policy (which the DSA
   statements read);
5. add strikes for policies that carry them (after the commit: a strike
   re-evaluates the creator's consequences, which move other items).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.moderation import _workflow_tables as w
from trustfeed.moderation._banks import Banks
from trustfeed.moderation._errors import ModerationError
from trustfeed.moderation._gate import Clock, Gate
from trustfeed.moderation._pdq import PDQSignal
from trustfeed.moderation._signals import SignalValue, hamming_hex
from trustfeed.moderation._status import Actor, Status
from trustfeed.moderation._strikes import Strikes
from trustfeed.moderation._tables import add_missing_columns
from trustfeed.moderation._taxonomy import Taxonomy
from trustfeed.moderation._workflow_errors import JobClosed, LeaseRefused, UnknownJob

OPEN, DECIDED = "open", "decided"
#: The queue a job goes to when the caller names none.
DEFAULT_QUEUE = "default"
#: Exact signals that identify the same media, strongest first.
_EXACT = ("sha256", "md5")


@dataclass(frozen=True)
class Job:
    """A review job; ``claimed_by``/``lease_until`` describe the current (maybe expired) lease."""

    id: int
    items: tuple[int, ...]
    media_key: str
    priority: int
    reason: str
    detected_by: str
    state: str
    created_at: float
    claimed_by: str | None
    lease_until: float | None
    decided_at: float | None
    queue: str = DEFAULT_QUEUE


@dataclass(frozen=True)
class NamedQueue:
    """One named queue of a :class:`ReviewQueue`, in the shape rules enqueue through."""

    review: ReviewQueue
    name: str

    def enqueue(self, item_id: int, *, reason: str, detected_by: Actor, priority: int = 0) -> int:
        return self.review.enqueue(
            item_id, reason=reason, detected_by=detected_by, priority=priority, queue=self.name
        )


@dataclass(frozen=True)
class MediaView:
    """What a reviewer's screen gets for one item: blurred unless explicitly revealed."""

    item_id: int
    media_ref: str
    blurred: bool = True
    warning: str = "may contain disturbing content: blurred until you reveal it"


@dataclass(frozen=True)
class JobView:
    """A claimed job as shown to its moderator."""

    job: Job
    media: tuple[MediaView, ...]


@dataclass(frozen=True)
class Decision:
    """A recorded review decision and the gate transitions it made."""

    id: int
    job_id: int
    moderator: str
    action: Status
    policy_id: str
    note: str
    at: float
    items: tuple[int, ...]
    transition_ids: tuple[int | None, ...]
    ledger_index: int


class ReviewQueue:
    """Review jobs in SQL; decisions go through the gate and into the ledger.

    ``engine`` must be the gate's store: a decision commits in the gate's
    transaction (step 2 of the module docstring).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        gate: Gate,
        taxonomy: Taxonomy,
        sink: EntrySink,
        clock: Clock = time.time,
        banks: Banks | None = None,
        strikes: Strikes | None = None,
        lease_seconds: float = 600.0,
        pdq_threshold: int = PDQSignal.threshold,
    ) -> None:
        if lease_seconds <= 0:
            raise ModerationError("a lease must last a positive number of seconds")
        self._engine = engine
        self._gate = gate
        self._taxonomy = taxonomy
        self._sink = sink
        self._clock = clock
        self._banks = banks
        self._strikes = strikes
        self.lease_seconds = lease_seconds
        self.pdq_threshold = pdq_threshold
        w.metadata.create_all(engine)
        add_missing_columns(engine, w.review_jobs)

    # ------------------------------------------------------------------ enqueue
    def enqueue(
        self,
        item_id: int,
        *,
        reason: str,
        detected_by: Actor,
        priority: int = 0,
        media_key: str | None = None,
        signals: Sequence[SignalValue] | None = None,
        queue: str = DEFAULT_QUEUE,
    ) -> int:
        """Queue an item for review in ``queue``; return its job (an open duplicate's, if any).

        Without ``media_key`` or ``signals`` the item's stored signals are used
        (``Banks.item_signals``); with none at all the item is its own media.
        Joining an open job with a higher priority raises the job's priority
        and moves it to ``queue`` (see the module docstring).
        """
        _check_queue_name(queue)
        if signals is None and self._banks is not None:
            signals = self._banks.item_signals(item_id)
        key, pdq = _media_identity(item_id, media_key, signals or [])
        now = self._clock()
        with self._engine.begin() as conn:
            job_id = self._open_job_for(conn, item_id, key, pdq)
            if job_id is None:
                row = {"media_key": key, "pdq": pdq, "priority": priority, "state": OPEN}
                row |= {"reason": reason[:500], "detected_by": str(detected_by), "queue": queue}
                done = conn.execute(w.review_jobs.insert().values(**row, created_at=now))
                ident: Any = done.inserted_primary_key
                job_id = int(ident[0])
            else:
                j = w.review_jobs.c
                conn.execute(
                    w.review_jobs.update()
                    .where(j.id == job_id, j.priority < priority)
                    .values(priority=priority, queue=queue)
                )
            self._add_item(conn, job_id, item_id, now)
        return job_id

    def named(self, queue: str) -> NamedQueue:
        """The queue called ``queue``, as rules route to it (:class:`NamedQueue`)."""
        _check_queue_name(queue)
        return NamedQueue(self, queue)

    def _open_job_for(
        self, conn: sa.Connection, item_id: int, key: str, pdq: str | None
    ) -> int | None:
        """An open job holding this item, or the same media by exact key or PDQ distance."""
        j, i = w.review_jobs.c, w.review_job_items.c
        held = sa.select(i.job_id).join_from(w.review_job_items, w.review_jobs, i.job_id == j.id)
        found = conn.execute(held.where(i.item_id == item_id, j.state == OPEN)).scalar()
        if found is None:
            same = sa.select(j.id).where(j.state == OPEN, j.media_key == key).order_by(j.id)
            found = conn.execute(same).scalar()
        if found is None and pdq is not None:
            near = sa.select(j.id, j.pdq).where(j.state == OPEN, j.pdq.is_not(None))
            for job_id, other in conn.execute(near.order_by(j.id)):
                if hamming_hex(pdq, other) <= self.pdq_threshold:
                    return int(job_id)
        return None if found is None else int(found)

    @staticmethod
    def _add_item(conn: sa.Connection, job_id: int, item_id: int, now: float) -> None:
        i = w.review_job_items.c
        exists = sa.select(i.item_id).where(i.job_id == job_id, i.item_id == item_id)
        if conn.execute(exists).first() is None:
            conn.execute(
                w.review_job_items.insert().values(job_id=job_id, item_id=item_id, added_at=now)
            )

    # ------------------------------------------------------------------ reads
    def job(self, job_id: int) -> Job:
        """The job ``job_id``; :class:`UnknownJob` if there is none."""
        with self._engine.connect() as conn:
            return self._job(conn, job_id)

    @staticmethod
    def _job(conn: sa.Connection, job_id: int) -> Job:
        row = conn.execute(sa.select(w.review_jobs).where(w.review_jobs.c.id == job_id)).first()
        if row is None:
            raise UnknownJob(f"no review job {job_id}")
        i = w.review_job_items.c
        items = conn.execute(sa.select(i.item_id).where(i.job_id == job_id).order_by(i.item_id))
        return _job(row, tuple(int(x) for x in items.scalars()))

    def pending(self, limit: int = 100, *, queue: str | None = None) -> list[Job]:
        """Jobs a moderator could claim now: open and not under an unexpired lease.

        Highest priority first, then oldest, so urgent work is never starved by
        a backlog and equal work is done in arrival order. ``queue`` keeps only
        that queue's jobs (None: every queue).
        """
        j = w.review_jobs.c
        query = (
            sa.select(j.id)
            .where(j.state == OPEN, sa.or_(j.lease_until.is_(None), j.lease_until <= self._clock()))
            .order_by(j.priority.desc(), j.created_at, j.id)
            .limit(limit)
        )
        if queue is not None:
            query = query.where(j.queue == queue)
        with self._engine.connect() as conn:
            return [self._job(conn, int(x)) for x in conn.execute(query).scalars()]

    # ------------------------------------------------------------------ leases
    def claim(self, job_id: int, moderator: str) -> JobView:
        """Take an exclusive lease on a job (renewing one's own); refused while another holds it."""
        who, now = str(Actor("moderator", moderator)), self._clock()
        j = w.review_jobs.c
        free = sa.or_(j.claimed_by.is_(None), j.lease_until <= now, j.claimed_by == who)
        with self._engine.begin() as conn:
            done = conn.execute(
                w.review_jobs.update()
                .where(j.id == job_id, j.state == OPEN, free)
                .values(claimed_by=who, lease_until=now + self.lease_seconds)
            )
            if done.rowcount != 1:
                raise self._why_not(conn, job_id, now)
            return _view(self._job(conn, job_id))

    def claim_next(self, moderator: str, *, queue: str | None = None) -> JobView | None:
        """Claim the most urgent available job (of ``queue`` if given); None when there is none."""
        for job in self.pending(limit=20, queue=queue):
            try:
                return self.claim(job.id, moderator)
            except LeaseRefused:  # someone else took it between the read and the claim
                continue
        return None

    def release(self, job_id: int, moderator: str) -> None:
        """Give a claimed job back to the queue before its lease runs out."""
        who = str(Actor("moderator", moderator))
        j = w.review_jobs.c
        with self._engine.begin() as conn:
            conn.execute(
                w.review_jobs.update()
                .where(j.id == job_id, j.state == OPEN, j.claimed_by == who)
                .values(claimed_by=None, lease_until=None)
            )

    def _why_not(self, conn: sa.Connection, job_id: int, now: float) -> ModerationError:
        job = self._job(conn, job_id)
        if job.state != OPEN:
            return JobClosed(f"review job {job_id} was already decided")
        if job.claimed_by is None or (job.lease_until or 0) <= now:
            return LeaseRefused(f"review job {job_id} is not claimed by you; claim it first")
        left = (job.lease_until or now) - now
        return LeaseRefused(
            f"review job {job_id} is claimed by {job.claimed_by} ({left:.0f} s left)"
        )

    # ------------------------------------------------------------------ reveal
    def reveal(self, job_id: int, item_id: int, moderator: str) -> MediaView:
        """Unblur one item's media for the moderator holding the lease; recorded."""
        who, now = str(Actor("moderator", moderator)), self._clock()
        with self._engine.begin() as conn:
            job = self._job(conn, job_id)
            if job.claimed_by != who or (job.lease_until or 0) <= now:
                raise self._why_not(conn, job_id, now)
            if item_id not in job.items:
                raise UnknownJob(f"item {item_id} is not in review job {job_id}")
            fields = {"job": job_id, "item": item_id, "moderator": who, "at": now}
            index = self._sink.append(encode_record("moderation_media_reveal", **fields))
            conn.execute(
                w.review_reveals.insert().values(
                    job_id=job_id, item_id=item_id, moderator=who, at=now, ledger_index=index
                )
            )
        return MediaView(item_id, _media_ref(item_id), blurred=False, warning="")

    # ------------------------------------------------------------------ decide
    def decide(
        self, job_id: int, *, moderator: str, action: Status, policy_id: str, note: str = ""
    ) -> Decision:
        """Steps 1–5 of the module docstring."""
        actor, action = Actor("moderator", moderator), Status(action)
        policy = self._taxonomy.get(policy_id)  # step 1
        if action is Status.PENDING or (action is Status.ELIGIBLE) == policy.restricts:
            raise ModerationError(f"policy {policy_id} does not justify the action {action}")
        reason = f"review job {job_id}: policy {policy_id}" + (f": {note}" if note else "")
        with self._gate.begin() as conn:  # steps 2-4 commit together or not at all
            job = self._close(conn, job_id, str(actor))
            todo = [i for i in job.items if self._gate.status(i, conn=conn) is not action]
            moves = self._gate.decide_many(todo, action, reason=reason, actor=actor, conn=conn)
            by_item = {m.item_id: m.id for m in moves}
            transitions = tuple(by_item.get(i) for i in job.items)
            decision = self._record(conn, job, str(actor), action, policy_id, note, transitions)
        if self._strikes is not None and policy.strike:  # step 5
            for item in job.items:
                creator = self._gate.uploader(item)
                if creator is not None:
                    self._strikes.add(
                        creator, decision_id=decision.id, item_id=item, policy_id=policy_id
                    )
        return decision

    def _close(self, conn: sa.Connection, job_id: int, who: str) -> Job:
        now = self._clock()
        j = w.review_jobs.c
        done = conn.execute(
            w.review_jobs.update()
            .where(j.id == job_id, j.state == OPEN, j.claimed_by == who, j.lease_until > now)
            .values(state=DECIDED, decided_at=now)
        )
        if done.rowcount != 1:
            raise self._why_not(conn, job_id, now)
        return self._job(conn, job_id)

    def _record(
        self,
        conn: sa.Connection,
        job: Job,
        who: str,
        action: Status,
        policy_id: str,
        note: str,
        transitions: tuple[int | None, ...],
    ) -> Decision:
        at, note = self._clock(), note[:1000]
        fields = {"job": job.id, "moderator": who, "action": action, "policy": policy_id}
        fields |= {"note": note, "items": list(job.items), "transitions": list(transitions)}
        index = self._sink.append(encode_record("moderation_review_decision", at=at, **fields))
        row = {"job_id": job.id, "moderator": who, "action": action, "policy_id": policy_id}
        row |= {"note": note, "at": at, "ledger_index": index}
        key: Any = conn.execute(w.review_decisions.insert().values(**row)).inserted_primary_key
        decision_id = int(key[0])
        conn.execute(
            w.decision_items.insert(),
            [
                {"decision_id": decision_id, "item_id": i, "transition_id": tr}
                for i, tr in zip(job.items, transitions, strict=True)
            ],
        )
        return Decision(
            decision_id, job.id, who, action, policy_id, note, at, job.items, transitions, index
        )

    def decisions(self) -> list[Decision]:
        """Every recorded review decision, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(w.review_decisions).order_by(w.review_decisions.c.id))
            return [_decision(conn, r) for r in rows.all()]


def _check_queue_name(queue: str) -> None:
    if not 1 <= len(queue) <= 64:
        raise ModerationError(f"a queue name has 1-64 characters, got {len(queue)}")


def _media_identity(
    item_id: int, media_key: str | None, signals: Sequence[SignalValue]
) -> tuple[str, str | None]:
    """The exact grouping key and the PDQ hash (variant 0, good quality) of an item's media."""
    pdq = next(
        (
            s.value
            for s in signals
            if s.signal == PDQSignal.name
            and s.variant == 0
            and (s.quality or 0) >= PDQSignal.min_quality
        ),
        None,
    )
    if media_key is not None:
        return f"key:{media_key}"[:160], pdq
    for name in _EXACT:
        found = next((s.value for s in signals if s.signal == name), None)
        if found is not None:
            return f"{name}:{found}", pdq
    return f"item:{item_id}", pdq


def _media_ref(item_id: int) -> str:
    return f"trustfeed:item/{item_id}"


def _view(job: Job) -> JobView:
    return JobView(job, tuple(MediaView(i, _media_ref(i)) for i in job.items))


def _job(row: sa.Row[Any], items: tuple[int, ...]) -> Job:
    m: Any = row._mapping
    lease, decided = m["lease_until"], m["decided_at"]
    return Job(
        int(m["id"]),
        items,
        m["media_key"],
        int(m["priority"]),
        m["reason"],
        m["detected_by"],
        m["state"],
        float(m["created_at"]),
        m["claimed_by"],
        None if lease is None else float(lease),
        None if decided is None else float(decided),
        m["queue"],
    )


def _decision(conn: sa.Connection, row: sa.Row[Any]) -> Decision:
    m: Any = row._mapping
    d = w.decision_items.c
    pairs = conn.execute(
        sa.select(d.item_id, d.transition_id).where(d.decision_id == m["id"]).order_by(d.item_id)
    ).all()
    return Decision(
        int(m["id"]),
        int(m["job_id"]),
        m["moderator"],
        Status(m["action"]),
        m["policy_id"],
        m["note"],
        float(m["at"]),
        tuple(int(p[0]) for p in pairs),
        tuple(None if p[1] is None else int(p[1]) for p in pairs),
        int(m["ledger_index"]),
    )

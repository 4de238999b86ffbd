"""A decision and its gate transition commit together: a crash between them leaves neither.

Each test stands a crash in for a ledger that refuses one kind of record, at
the step after the gate has moved the item inside the shared transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from trustfeed.custody._records import EntrySink, decode_record
from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Actor, EligibilityFeed, Gate, Status
from trustfeed.moderation import _workflow_tables as w
from trustfeed.moderation._appeals import Appeals, Outcome
from trustfeed.moderation._review import ReviewQueue
from trustfeed.moderation._taxonomy import Taxonomy
from trustfeed.moderation._workflow_errors import AppealRefused
from trustfeed.storage import open_engine

RULE = Actor("rule", "bank:test")


class CrashOn:
    """A ledger that fails when asked to append one kind of record (a crash there)."""

    def __init__(self, ledger: Ledger, kind: str) -> None:
        self.ledger, self.kind = ledger, kind

    def _check(self, entry: bytes) -> None:
        if decode_record(entry)["kind"] == self.kind:
            raise OSError(f"crashed while recording {self.kind}")

    def append(self, entry: bytes) -> int:
        self._check(entry)
        return self.ledger.append(entry)

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        for entry in entries:
            self._check(entry)
        return self.ledger.append_many(entries)


@dataclass
class World:
    engine: sa.Engine
    gate: Gate
    ledger: Ledger


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    try:
        yield World(engine, Gate(engine, sink=ledger, clock=lambda: 1000.0), ledger)
    finally:
        ledger.close()
        engine.dispose()


def _queue(world: World, sink: EntrySink) -> ReviewQueue:
    return ReviewQueue(world.engine, gate=world.gate, taxonomy=Taxonomy.load(), sink=sink)


def _count(world: World, table: sa.Table) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_uploader_is_read_from_the_upload_transition(world: World) -> None:
    world.gate.upload(1, actor=Actor("uploader", "creator-7"))
    world.gate.upload(2, actor=Actor("system", "importer"))
    world.gate.decide(1, Status.ELIGIBLE, reason="ok", actor=Actor("moderator", "m"))
    assert world.gate.uploader(1) == "creator-7"
    assert world.gate.uploader(2) is None  # not uploaded by a creator
    assert world.gate.uploader(99) is None  # never uploaded


def test_a_transition_in_a_rolled_back_transaction_never_happened(world: World) -> None:
    world.gate.upload(1, actor=Actor("uploader", "c"))
    feed = EligibilityFeed(world.gate)
    with pytest.raises(RuntimeError), world.gate.begin() as conn:
        world.gate.decide(1, Status.ELIGIBLE, reason="ok", actor=RULE, conn=conn)
        assert world.gate.status(1, conn=conn) is Status.ELIGIBLE  # seen inside
        raise RuntimeError("the caller's own write failed")
    assert world.gate.status(1) is Status.PENDING and len(world.gate.history(1)) == 1
    assert feed.poll().unblocked.tolist() == []


def test_a_crash_recording_a_review_decision_leaves_the_item_and_job_as_they_were(
    world: World,
) -> None:
    """The bug this pins: the gate's transitions used to commit before the decision row,
    so a crash between them left items moved by a decision that was never recorded."""
    for item in (1, 2):
        world.gate.upload(item, actor=Actor("uploader", "c"))
        world.gate.decide(item, Status.QUARANTINED, reason="flag", actor=RULE)
    good = _queue(world, world.ledger)
    job = good.enqueue(1, reason="r", detected_by=RULE, media_key="same")
    good.enqueue(2, reason="r", detected_by=RULE, media_key="same")
    good.claim(job, "alice")
    crashing = _queue(world, CrashOn(world.ledger, "moderation_review_decision"))
    with pytest.raises(OSError):
        crashing.decide(job, moderator="alice", action=Status.ELIGIBLE, policy_id="no-violation")
    # neither the transitions nor the decision: the job is still alice's to decide
    assert world.gate.status(1) is world.gate.status(2) is Status.QUARANTINED
    assert [len(world.gate.history(i)) for i in (1, 2)] == [2, 2]
    assert good.decisions() == [] and _count(world, w.decision_items) == 0
    assert good.job(job).state == "open" and good.job(job).claimed_by == "moderator:alice"
    decision = good.decide(job, moderator="alice", action=Status.ELIGIBLE, policy_id="no-violation")
    assert world.gate.eligible_items() == {1, 2}
    assert decision.transition_ids == tuple(world.gate.history(i)[-1].id for i in (1, 2))


def test_a_crash_moving_an_overturned_item_leaves_the_appeal_open(world: World) -> None:
    world.gate.upload(1, actor=Actor("uploader", "creator-1"))
    world.gate.decide(1, Status.REMOVED, reason="bank match", actor=RULE)
    appeals = Appeals(world.engine, gate=world.gate, sink=world.ledger)
    appeal = appeals.file(1, appellant="creator-1", statement="a false match")
    crashing_gate = Gate(world.engine, sink=CrashOn(world.ledger, "moderation_transition"))
    crashing = Appeals(world.engine, gate=crashing_gate, sink=world.ledger)
    with pytest.raises(OSError):
        crashing.resolve(appeal.id, moderator="bob", outcome=Outcome.OVERTURNED)
    # the resolution row was written first in the transaction; it went with the rollback
    assert appeals.get(appeal.id).state == "open" and appeals.get(appeal.id).resolved_by is None
    assert world.gate.status(1) is Status.REMOVED
    done = appeals.resolve(appeal.id, moderator="bob", outcome=Outcome.OVERTURNED)
    assert done.state == "overturned" and world.gate.is_eligible(1)
    with pytest.raises(AppealRefused, match="already resolved"):
        appeals.resolve(appeal.id, moderator="carol", outcome=Outcome.UPHELD)


def test_a_crash_recording_an_appeal_resolution_reverses_nothing(world: World) -> None:
    """The bug this pins: the overturn's transition used to commit on its own first,
    so a failure recording the resolution left the item eligible and the appeal open."""
    world.gate.upload(1, actor=Actor("uploader", "creator-1"))
    world.gate.decide(1, Status.NOT_RECOMMENDABLE, reason="rule", actor=RULE)
    appeals = Appeals(world.engine, gate=world.gate, sink=world.ledger)
    appeal = appeals.file(1, appellant="creator-1", statement="s")
    crashing = Appeals(
        world.engine, gate=world.gate, sink=CrashOn(world.ledger, "moderation_appeal_resolved")
    )
    with pytest.raises(OSError):
        crashing.resolve(appeal.id, moderator="bob", outcome=Outcome.OVERTURNED)
    assert world.gate.status(1) is Status.NOT_RECOMMENDABLE and len(world.gate.history(1)) == 2
    assert appeals.open_appeals() == [appeals.get(appeal.id)]

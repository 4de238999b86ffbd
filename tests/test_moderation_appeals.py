"""Appeals (a different moderator; overturns really reverse) and creator strikes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from trustfeed.custody._records import decode_record
from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Actor, EligibilityFeed, Gate, Status
from trustfeed.moderation._appeals import Appeals, Outcome
from trustfeed.moderation._metrics import overturn_rate
from trustfeed.moderation._review import Decision, ReviewQueue
from trustfeed.moderation._strikes import Consequence, StrikePolicy, Strikes
from trustfeed.moderation._taxonomy import Taxonomy
from trustfeed.moderation._workflow_errors import AppealRefused
from trustfeed.storage import open_engine

RULE = Actor("rule", "bank:test")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    gate: Gate
    queue: ReviewQueue
    appeals: Appeals
    strikes: Strikes
    ledger: Ledger
    clock: FakeClock
    engine: object


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    clock = FakeClock()
    gate = Gate(engine, sink=ledger, clock=clock)
    strikes = Strikes(engine, gate=gate, sink=ledger, clock=clock, policy=StrikePolicy())
    queue = ReviewQueue(
        engine, gate=gate, taxonomy=Taxonomy.load(), sink=ledger, clock=clock, strikes=strikes
    )
    appeals = Appeals(engine, gate=gate, sink=ledger, clock=clock, strikes=strikes)
    try:
        yield World(gate, queue, appeals, strikes, ledger, clock, engine)
    finally:
        ledger.close()
        engine.dispose()


def _eligible_upload(world: World, item: int, creator: str = "creator-1") -> None:
    world.gate.upload(item, actor=Actor("uploader", creator))
    world.gate.decide(item, Status.ELIGIBLE, reason="clean", actor=Actor("rule", "no-match"))


def _remove(world: World, item: int, *, by: str = "alice", policy: str = "hate-speech") -> Decision:
    job = world.queue.enqueue(item, reason="reported", detected_by=RULE)
    world.queue.claim(job, by)
    return world.queue.decide(job, moderator=by, action=Status.REMOVED, policy_id=policy)


def _kinds(ledger: Ledger) -> list[str]:
    return [decode_record(e)["kind"] for e in ledger.entries(0, ledger.size())]


def test_an_appeal_goes_to_a_different_moderator_and_an_overturn_makes_the_item_servable(
    world: World,
) -> None:
    _eligible_upload(world, 1)
    feed = EligibilityFeed(world.gate)
    feed.poll()
    _remove(world, 1, by="alice")
    assert 1 in feed.poll().blocked
    appeal = world.appeals.file(1, appellant="creator-1", statement="it is satire")
    assert appeal.decided_by == "moderator:alice" and appeal.decision_id is not None
    with pytest.raises(AppealRefused, match="different moderator"):
        world.appeals.assign(appeal.id, "alice")
    with pytest.raises(AppealRefused, match="different moderator"):
        world.appeals.resolve(appeal.id, moderator="alice", outcome=Outcome.OVERTURNED)
    with pytest.raises(AppealRefused, match="open appeal"):
        world.appeals.file(1, appellant="creator-1", statement="again")
    world.appeals.assign(appeal.id, "bob")
    with pytest.raises(AppealRefused, match="assigned to"):
        world.appeals.resolve(appeal.id, moderator="carol", outcome=Outcome.UPHELD)
    done = world.appeals.resolve(appeal.id, moderator="bob", outcome=Outcome.OVERTURNED, note="ok")
    assert done.state == "overturned" and done.resolved_by == "moderator:bob"
    assert world.gate.is_eligible(1) and 1 in world.gate.eligible_items()
    assert 1 in feed.poll().unblocked
    assert world.gate.history(1)[-1].actor == "moderator:bob"
    kinds = _kinds(world.ledger)
    assert "moderation_appeal_filed" in kinds and "moderation_appeal_resolved" in kinds
    assert world.appeals.open_appeals() == []


def test_an_upheld_appeal_keeps_the_restriction(world: World) -> None:
    _eligible_upload(world, 1)
    _remove(world, 1, by="alice")
    appeal = world.appeals.file(1, appellant="creator-1", statement="please")
    world.appeals.resolve(appeal.id, moderator="bob", outcome=Outcome.UPHELD)
    assert world.gate.status(1) is Status.REMOVED and not world.gate.is_eligible(1)
    with pytest.raises(AppealRefused, match="already resolved"):
        world.appeals.resolve(appeal.id, moderator="bob", outcome=Outcome.OVERTURNED)
    rate = overturn_rate(world.engine)  # type: ignore[arg-type]
    assert (rate.resolved, rate.overturned, rate.rate) == (1, 0, 0.0)


def test_automated_restrictions_can_be_appealed_and_unrestricted_items_cannot(
    world: World,
) -> None:
    _eligible_upload(world, 1)
    with pytest.raises(AppealRefused, match="not restricted"):
        world.appeals.file(1, appellant="creator-1", statement="?")
    world.gate.escalate([1], Status.QUARANTINED, reason="bank match", actor=RULE)
    appeal = world.appeals.file(1, appellant="creator-1", statement="false match")
    assert appeal.decision_id is None and appeal.decided_by == "rule:bank:test"
    world.appeals.resolve(appeal.id, moderator="alice", outcome=Outcome.OVERTURNED)
    assert world.gate.is_eligible(1)
    rate = overturn_rate(world.engine)  # type: ignore[arg-type]
    assert rate.rate == 1.0


def test_a_stale_appeal_is_refused(world: World) -> None:
    _eligible_upload(world, 1)
    world.gate.escalate([1], Status.NOT_RECOMMENDABLE, reason="r", actor=RULE)
    appeal = world.appeals.file(1, appellant="creator-1", statement="s")
    world.gate.escalate([1], Status.REMOVED, reason="worse", actor=RULE)
    with pytest.raises(AppealRefused, match="changed since"):
        world.appeals.resolve(appeal.id, moderator="bob", outcome=Outcome.OVERTURNED)


def test_strikes_reach_thresholds_apply_consequences_and_are_removed_on_overturn(
    world: World,
) -> None:
    for item in range(1, 9):
        _eligible_upload(world, item)
    _eligible_upload(world, 50, creator="someone-else")
    decisions = [_remove(world, item) for item in (1, 2, 3)]
    assert world.strikes.count("creator-1") == 3
    assert world.strikes.consequences("creator-1") == {Consequence.QUARANTINE_UPLOADS}
    screener = world.strikes.screener(world.queue)
    world.gate.upload(20, actor=Actor("uploader", "creator-1"))
    assert world.gate.screen(20, b"", [screener]) is Status.QUARANTINED
    assert any(20 in j.items for j in world.queue.pending())  # queued for a person
    world.gate.upload(21, actor=Actor("uploader", "someone-else"))
    assert screener.screen(21, b"") is None
    decisions += [_remove(world, item) for item in (4, 5)]
    assert Consequence.NOT_RECOMMENDABLE in world.strikes.consequences("creator-1")
    assert world.gate.status(6) is Status.NOT_RECOMMENDABLE  # existing items demoted
    assert world.gate.is_eligible(50)  # other creators untouched
    # an overturn removes that decision's strike and lifts the consequence it no longer reaches
    appeal = world.appeals.file(5, appellant="creator-1", statement="not hate")
    world.appeals.resolve(appeal.id, moderator="bob", outcome=Outcome.OVERTURNED)
    assert world.strikes.count("creator-1") == 4
    assert Consequence.NOT_RECOMMENDABLE not in world.strikes.consequences("creator-1")
    assert world.gate.is_eligible(5) and world.gate.is_eligible(6)
    assert world.gate.status(20) is Status.QUARANTINED  # still waits for its review
    kinds = _kinds(world.ledger)
    assert kinds.count("moderation_strike") == 6  # 5 added, 1 removed


def test_strikes_expire_and_policies_without_strikes_do_not_count(world: World) -> None:
    for item in (1, 2):
        _eligible_upload(world, item)
    job = world.queue.enqueue(1, reason="r", detected_by=RULE)
    world.queue.claim(job, "alice")
    world.queue.decide(
        job, moderator="alice", action=Status.NOT_RECOMMENDABLE, policy_id="spam-low-quality"
    )
    assert world.strikes.count("creator-1") == 0
    _remove(world, 2)
    assert world.strikes.count("creator-1") == 1
    world.clock.now += 91 * 86400
    assert world.strikes.count("creator-1") == 0

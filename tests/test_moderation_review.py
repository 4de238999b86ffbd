"""Review queue: leases, duplicate grouping, policy-cited decisions, wellness, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from trustfeed.custody._records import decode_record
from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Actor, Banks, Gate, ModerationError, Status
from trustfeed.moderation._metrics import FloodRule, MatchLog, time_in_queue
from trustfeed.moderation._review import ReviewQueue
from trustfeed.moderation._signals import SignalValue
from trustfeed.moderation._taxonomy import DSA_CATEGORIES, Taxonomy
from trustfeed.moderation._workflow_errors import JobClosed, LeaseRefused, UnknownPolicy
from trustfeed.storage import open_engine

RULE = Actor("rule", "bank:test")
PDQ_A = "f" * 64
PDQ_NEAR_A = "0" * 4 + "f" * 60  # 16 bits away
PDQ_FAR = "0" * 64


class FakeClock:
    """An injectable clock the tests move by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    gate: Gate
    banks: Banks
    queue: ReviewQueue
    ledger: Ledger
    clock: FakeClock
    engine: object


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    clock = FakeClock()
    gate = Gate(engine, sink=ledger, clock=clock)
    banks = Banks(engine, gate=gate, clock=clock)
    queue = ReviewQueue(
        engine,
        gate=gate,
        taxonomy=Taxonomy.load(),
        sink=ledger,
        clock=clock,
        banks=banks,
        lease_seconds=300,
    )
    try:
        yield World(gate, banks, queue, ledger, clock, engine)
    finally:
        ledger.close()
        engine.dispose()


def _upload(world: World, *items: int, creator: str = "creator-1") -> None:
    for item in items:
        world.gate.upload(item, actor=Actor("uploader", creator))
        world.gate.decide(item, Status.QUARANTINED, reason="needs review", actor=RULE)


def _records(ledger: Ledger, kind: str) -> list[dict]:
    return [r for r in map(decode_record, ledger.entries(0, ledger.size())) if r["kind"] == kind]


def test_claim_is_exclusive_and_an_expired_lease_returns_the_job(world: World) -> None:
    _upload(world, 1)
    job = world.queue.enqueue(1, reason="bank match", detected_by=RULE)
    view = world.queue.claim(job, "alice")
    assert view.job.claimed_by == "moderator:alice"
    with pytest.raises(LeaseRefused, match="claimed by moderator:alice"):
        world.queue.claim(job, "bob")
    assert world.queue.pending() == []
    world.queue.claim(job, "alice")  # renewing one's own lease is fine
    world.clock.now += 301
    assert [j.id for j in world.queue.pending()] == [job]
    world.queue.claim(job, "bob")
    with pytest.raises(LeaseRefused):
        world.queue.decide(job, moderator="alice", action=Status.REMOVED, policy_id="hate-speech")
    decision = world.queue.decide(
        job, moderator="bob", action=Status.REMOVED, policy_id="hate-speech"
    )
    assert decision.items == (1,) and world.gate.status(1) is Status.REMOVED
    with pytest.raises(JobClosed):
        world.queue.claim(job, "carol")


def test_claim_next_takes_the_most_urgent_job_first(world: World) -> None:
    _upload(world, 1, 2, 3)
    low = world.queue.enqueue(1, reason="r", detected_by=RULE, priority=1)
    high = world.queue.enqueue(2, reason="r", detected_by=RULE, priority=9)
    world.queue.enqueue(3, reason="r", detected_by=RULE, priority=1)
    first, second = world.queue.claim_next("alice"), world.queue.claim_next("bob")
    assert first is not None and first.job.id == high
    assert second is not None and second.job.id == low
    world.queue.release(low, "bob")
    assert low in [j.id for j in world.queue.pending()]


def test_duplicates_of_one_media_form_one_job_and_one_decision_covers_them(world: World) -> None:
    _upload(world, 1, 2, 3, 4, 5, 6)
    sha = SignalValue("sha256", "ab" * 32)
    world.banks.store_signals(1, [sha])
    world.banks.store_signals(2, [sha])  # exact duplicate, found through stored signals
    exact = world.queue.enqueue(1, reason="r", detected_by=RULE)
    assert world.queue.enqueue(2, reason="r", detected_by=RULE, priority=5) == exact
    pdq = [SignalValue("pdq", PDQ_A, 0, 100), SignalValue("sha256", "cd" * 32)]
    near = world.queue.enqueue(3, reason="r", detected_by=RULE, signals=pdq)
    pdq_near = [SignalValue("pdq", PDQ_NEAR_A, 0, 100), SignalValue("sha256", "ef" * 32)]
    assert world.queue.enqueue(4, reason="r", detected_by=RULE, signals=pdq_near) == near
    far = [SignalValue("pdq", PDQ_FAR, 0, 100)]
    assert world.queue.enqueue(5, reason="r", detected_by=RULE, signals=far) not in (exact, near)
    keyed = world.queue.enqueue(6, reason="r", detected_by=RULE, media_key="upload-batch-7")
    assert keyed not in (exact, near)
    assert world.queue.job(exact).items == (1, 2) and world.queue.job(exact).priority == 5
    assert world.queue.job(near).items == (3, 4)
    world.queue.claim(near, "alice")
    decision = world.queue.decide(
        near, moderator="alice", action=Status.REMOVED, policy_id="violence-graphic", note="gore"
    )
    assert decision.items == (3, 4) and all(t is not None for t in decision.transition_ids)
    assert world.gate.status(3) is world.gate.status(4) is Status.REMOVED
    assert world.gate.status(5) is Status.QUARANTINED
    # a decided job is closed: the same media enqueued again opens a new job
    assert world.queue.enqueue(4, reason="again", detected_by=RULE, signals=pdq_near) != near


def test_decisions_must_cite_a_documented_policy_that_justifies_the_action(world: World) -> None:
    _upload(world, 1)
    job = world.queue.enqueue(1, reason="r", detected_by=RULE)
    world.queue.claim(job, "alice")
    with pytest.raises(UnknownPolicy):
        world.queue.decide(job, moderator="alice", action=Status.REMOVED, policy_id="vibes")
    with pytest.raises(ModerationError, match="does not justify"):
        world.queue.decide(job, moderator="alice", action=Status.REMOVED, policy_id="no-violation")
    with pytest.raises(ModerationError, match="does not justify"):
        world.queue.decide(job, moderator="alice", action=Status.ELIGIBLE, policy_id="hate-speech")
    assert world.gate.status(1) is Status.QUARANTINED  # nothing was applied
    decision = world.queue.decide(
        job, moderator="alice", action=Status.ELIGIBLE, policy_id="no-violation"
    )
    assert world.gate.is_eligible(1) and decision.policy_id == "no-violation"
    assert world.queue.decisions() == [decision]


def test_a_decision_is_recorded_in_sql_and_in_the_ledger(world: World) -> None:
    _upload(world, 1, 2)
    world.banks.store_signals(1, [SignalValue("md5", "0" * 32)])
    world.banks.store_signals(2, [SignalValue("md5", "0" * 32)])
    job = world.queue.enqueue(1, reason="r", detected_by=RULE)
    world.queue.enqueue(2, reason="r", detected_by=RULE)
    world.queue.claim(job, "alice")
    decision = world.queue.decide(
        job, moderator="alice", action=Status.AGE_RESTRICTED, policy_id="mature-themes"
    )
    [record] = _records(world.ledger, "moderation_review_decision")
    assert record["policy"] == "mature-themes" and record["items"] == [1, 2]
    assert record["moderator"] == "moderator:alice" and decision.ledger_index >= 0
    moves = [
        r for r in _records(world.ledger, "moderation_transition") if r["to"] == "age_restricted"
    ]
    assert sorted(r["item"] for r in moves) == [1, 2]
    assert {r["actor"] for r in moves} == {"moderator:alice"}


def test_media_is_blurred_until_an_explicit_recorded_reveal(world: World) -> None:
    _upload(world, 1)
    job = world.queue.enqueue(1, reason="r", detected_by=RULE)
    with pytest.raises(LeaseRefused):
        world.queue.reveal(job, 1, "alice")  # no lease, no look
    view = world.queue.claim(job, "alice")
    assert [m.blurred for m in view.media] == [True]
    shown = world.queue.reveal(job, 1, "alice")
    assert not shown.blurred and shown.item_id == 1
    [record] = _records(world.ledger, "moderation_media_reveal")
    assert record["moderator"] == "moderator:alice" and record["item"] == 1


def test_time_in_queue_median_and_p90(world: World) -> None:
    assert time_in_queue(world.engine).count == 0  # type: ignore[arg-type]
    _upload(world, *range(1, 11))
    for item in range(1, 11):
        job = world.queue.enqueue(item, reason="r", detected_by=RULE)
        world.clock.now += 10 * item
        world.queue.claim(job, "alice")
        world.queue.decide(job, moderator="alice", action=Status.REMOVED, policy_id="scam-fraud")
    times = time_in_queue(world.engine)  # type: ignore[arg-type]
    assert times.count == 10 and times.median == 55.0 and times.p90 == pytest.approx(91.0)


def test_shipped_taxonomy_is_documented_and_maps_to_dsa_categories() -> None:
    tax = Taxonomy.load()
    assert "no-violation" in tax and len(tax) >= 10
    for policy in tax.policies():
        assert policy.title and policy.description and policy.terms_section
        if policy.restricts:
            assert policy.dsa_category in DSA_CATEGORIES
    with pytest.raises(ModerationError):
        bad = '{"version": 1, "policies": [{"id": "x", "title": "t", "description": "d",'
        bad += ' "default_action": "removed", "dsa_category": "STATEMENT_CATEGORY_MADE_UP",'
        bad += ' "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",'
        bad += ' "terms_section": "s", "strike": true}]}'
        Taxonomy.load(bad)
    with pytest.raises(ModerationError):
        Taxonomy.load('{"version": 1, "policies": []}')


def test_flood_alarm_fires_on_a_sudden_surge_only(database_url: str) -> None:
    from trustfeed.moderation._banks import BankMatch

    engine = open_engine(database_url)
    clock = FakeClock(0.0)
    log = MatchLog(engine, clock=clock)
    rule = FloodRule(window=3600, baseline_windows=24, factor=10, min_count=20)
    usual, surging = BankMatch("b", "pdq", 1, "x", 0, 0), BankMatch("b", "pdq", 2, "y", 0, 0)
    try:
        for hour in range(25):  # normal traffic: entry 1 matches 30 times an hour, every hour
            for k in range(30):
                clock.now = hour * 3600 + k * 100
                log.record(1000 * hour + k, [usual])
        clock.now = 25 * 3600
        assert log.alarms(rule) == []  # steady high volume is not a flood
        for k in range(19):  # entry 2: nothing before, then 19 matches: below min_count
            clock.now = 24 * 3600 + k
            log.record(90_000 + k, [surging])
        clock.now = 25 * 3600
        assert log.alarms(rule) == []
        clock.now = 24 * 3600 + 50
        log.record(99_999, [surging])
        clock.now = 25 * 3600
        [alarm] = log.alarms(rule)
        assert (alarm.entry_id, alarm.count, alarm.usual_per_window) == (2, 20, 0.0)
    finally:
        engine.dispose()


def test_cli_queue_claim_decide_appeal_and_sor_export(tmp_path) -> None:
    from typer.testing import CliRunner

    from trustfeed.moderation._cli_review import moderation_app

    store, ledger_url = f"sqlite:///{tmp_path / 'm.db'}", f"sqlite:///{tmp_path / 'l.db'}"
    engine, ledger = open_engine(store), Ledger.open(ledger_url, origin="test/ledger")
    try:
        gate = Gate(engine, sink=ledger)
        gate.upload(1, actor=Actor("uploader", "creator-1"))
        queue = ReviewQueue(engine, gate=gate, taxonomy=Taxonomy.load(), sink=ledger)
        job = queue.enqueue(1, reason="reported", detected_by=RULE)
    finally:
        ledger.close()
        engine.dispose()
    run = CliRunner().invoke
    listed = run(moderation_app, ["queue", "--store", store])
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["id"] == job
    common = ["--store", store, "--ledger", ledger_url, "--moderator", "alice"]
    assert run(moderation_app, ["claim", str(job), *common]).exit_code == 0
    bad = run(moderation_app, ["decide", str(job), *common, "--action", "removed", "--policy", "x"])
    assert bad.exit_code == 2 and "no policy 'x'" in bad.stderr
    decided = ["decide", str(job), *common, "--action", "removed", "--policy", "scam-fraud"]
    assert run(moderation_app, decided).exit_code == 0
    appeal = ["appeal", "1", "--store", store, "--ledger", ledger_url]
    filed = run(moderation_app, [*appeal, "--appellant", "creator-1", "--statement", "no"])
    assert filed.exit_code == 0, filed.stderr
    out = tmp_path / "sor.jsonl"
    exported = run(
        moderation_app, ["sor-export", "--store", store, "--ledger", ledger_url, "--out", str(out)]
    )
    assert exported.exit_code == 0, exported.stderr
    [line] = out.read_text().splitlines()
    assert json.loads(line)["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    missing = run(moderation_app, ["queue", "--store", f"sqlite:///{tmp_path / 'nope.db'}"])
    assert missing.exit_code == 2 and missing.stderr.startswith("error:")

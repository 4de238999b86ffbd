"""DSA statements of reasons: one per restriction, schema-valid, exported, in the ledger."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from trustfeed.custody._records import decode_record
from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Actor, Gate, Status
from trustfeed.moderation._dsa import StatementsOfReasons, statement_schema, validate_statement
from trustfeed.moderation._gate import FAIL_CLOSED
from trustfeed.moderation._review import ReviewQueue
from trustfeed.moderation._taxonomy import Taxonomy
from trustfeed.moderation._workflow_errors import InvalidStatement
from trustfeed.storage import open_engine

RULE = Actor("rule", "bank:csam-hashes")
DAY = 86400.0


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    gate: Gate
    queue: ReviewQueue
    sor: StatementsOfReasons
    ledger: Ledger
    clock: FakeClock


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    clock = FakeClock()
    gate, tax = Gate(engine, sink=ledger, clock=clock), Taxonomy.load()
    queue = ReviewQueue(engine, gate=gate, taxonomy=tax, sink=ledger, clock=clock)
    sor = StatementsOfReasons(engine, gate=gate, taxonomy=tax, sink=ledger, clock=clock)
    try:
        yield World(gate, queue, sor, ledger, clock)
    finally:
        ledger.close()
        engine.dispose()


def _decide(world: World, item: int, action: Status, policy: str, by: Actor = RULE) -> None:
    job = world.queue.enqueue(item, reason="flagged", detected_by=by)
    world.queue.claim(job, "alice")
    world.queue.decide(job, moderator="alice", action=action, policy_id=policy, note="seen")


def _every_kind_of_restriction(world: World) -> None:
    for item in range(1, 8):
        world.gate.upload(item, actor=Actor("uploader", "creator-1"))
    world.clock.now += 2 * DAY
    world.gate.escalate([1], Status.QUARANTINED, reason="bank entry 4 (pdq, 3)", actor=RULE)
    _decide(world, 1, Status.REMOVED, "child-safety")  # quarantined → removed
    _decide(world, 2, Status.AGE_RESTRICTED, "mature-themes", by=Actor("uploader", "x"))
    _decide(world, 3, Status.NOT_RECOMMENDABLE, "misinformation-civic")
    _decide(world, 4, Status.ELIGIBLE, "no-violation")  # not a restriction: no statement
    world.gate.escalate([5], Status.NOT_RECOMMENDABLE, reason="timeout", actor=FAIL_CLOSED)
    world.gate.escalate([6], Status.QUARANTINED, reason="text screen", actor=Actor("rule", "t1"))
    world.gate.escalate([7], Status.REMOVED, reason="bank entry 9 (md5, 0)", actor=RULE)


def test_every_restriction_produces_one_schema_valid_statement(world: World) -> None:
    _every_kind_of_restriction(world)
    made = world.sor.sync()
    restrictions = [
        tr
        for item in range(1, 8)
        for tr in world.gate.history(item)
        if tr.to_status
        in (Status.AGE_RESTRICTED, Status.NOT_RECOMMENDABLE, Status.QUARANTINED, Status.REMOVED)
    ]
    assert len(made) == len(restrictions) == 7
    assert {s["puid"] for s in made} == {f"trustfeed-sor-{tr.id}" for tr in restrictions}
    for statement in made:
        validate_statement(statement)
    by_item = {int(s["puid"].rsplit("-", 1)[1]): s for s in made}
    first = {tr.id: tr.item_id for tr in restrictions}
    get = {first[k]: v for k, v in by_item.items() if first[k] != 1}
    removed = by_item[max(tr.id for tr in restrictions if tr.item_id == 1)]
    assert removed["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    assert removed["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert removed["category"] == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    assert removed["illegal_content_legal_ground"]
    assert removed["automated_detection"] == "Yes"  # a bank rule queued it
    assert removed["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert get[2]["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED"]
    assert get[2]["automated_detection"] == "No"  # a user report, decided by a person
    assert get[3]["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_DEMOTED"]
    assert get[3]["category"].endswith("CIVIC_DISCOURSE_OR_ELECTIONS")
    assert get[5]["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_DEMOTED"]
    assert get[6]["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_DISABLED"]
    assert get[7]["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert removed["content_date"] == "2023-11-14" and removed["application_date"] == "2023-11-16"
    assert world.sor.sync() == []  # each restriction is stated exactly once


def test_statements_are_exported_as_json_lines_and_recorded_in_the_ledger(world: World) -> None:
    _every_kind_of_restriction(world)
    world.sor.sync()
    out = io.StringIO()
    assert world.sor.export_jsonl(out) == 7
    lines = out.getvalue().splitlines()
    assert len(lines) == 7
    for line in lines:
        validate_statement(json.loads(line))
    records = [decode_record(e) for e in world.ledger.entries(0, world.ledger.size())]
    ledgered = {r["puid"] for r in records if r["kind"] == "dsa_statement_of_reasons"}
    assert ledgered == {json.loads(line)["puid"] for line in lines}


def _valid(world: World) -> dict[str, Any]:
    """One valid statement on terms-of-service grounds (no illegal-content fields)."""
    _every_kind_of_restriction(world)
    made = world.sor.sync()
    return next(s for s in made if s["decision_ground"].endswith("INCOMPATIBLE_CONTENT"))


REQUIRED = statement_schema()["required"]


@pytest.mark.parametrize("field", REQUIRED)
def test_a_statement_missing_a_required_field_is_invalid(world: World, field: str) -> None:
    statement = _valid(world)
    validate_statement(statement)
    del statement[field]
    with pytest.raises(InvalidStatement):
        validate_statement(statement)


@pytest.mark.parametrize(
    "change",
    [
        {"category": "STATEMENT_CATEGORY_MADE_UP"},
        {"decision_visibility": ["DECISION_VISIBILITY_HIDDEN"]},
        {"decision_visibility": []},
        {"automated_decision": "Yes"},
        {"content_date": "14-11-2023"},
        {"puid": "has spaces"},
        {"unknown_field": 1},
        {"decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT"},  # without the legal ground
        {"decision_facts": ""},
    ],
)
def test_malformed_statements_are_invalid(world: World, change: dict[str, Any]) -> None:
    statement = _valid(world) | change
    with pytest.raises(InvalidStatement):
        validate_statement(statement)


def test_a_statement_needs_at_least_one_restriction(world: World) -> None:
    statement = _valid(world)
    del statement["decision_visibility"]
    with pytest.raises(InvalidStatement):
        validate_statement(statement)
    validate_statement(statement | {"decision_account": "DECISION_ACCOUNT_SUSPENDED"})

"""Moderation rules: validation, most-severe-wins, the gate as ``rule:<id>``, and dry runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Actor, Banks, Gate, SignalValue, Status, moderation_app
from trustfeed.moderation._cli_video import rules_app  # noqa: F401  (registers the commands)
from trustfeed.moderation._rules import (
    ItemFacts,
    MatchFact,
    RuleEngine,
    RuleError,
    RuleScreener,
    RuleSet,
    StoredFacts,
    dry_run,
)
from trustfeed.moderation._tables import transitions
from trustfeed.storage import open_engine

BASE = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"
#: 128 bits from BASE: a second, unrelated bank hash.
OTHER = f"{int(BASE, 16) ^ (((1 << 128) - 1) << 128):064x}"
UP = Actor("uploader", "creator-1")

#: A version-1 rule file as an operator writes it (kept verbatim: old files must still load).
RULES_V1 = {
    "format": 1,
    "version": 7,
    "rules": [
        {
            "id": "toxic-caption",
            "when": [{"score": {"name": "text.toxicity", "at_least": 0.9}}],
            "status": "not_recommendable",
            "queue": "text",
            "priority": 5,
        },
        {
            "id": "known-bad",
            "description": "anything in the csam bank, however close",
            "when": [{"match": {"bank": "csam"}}],
            "status": "removed",
            "queue": "legal",
            "priority": 90,
        },
        {
            "id": "near-copy",
            "when": [{"match": {"signal": "pdq", "max_distance": 8}}],
            "status": "quarantined",
        },
        {"id": "repeat-offender", "when": [{"strikes": {"at_least": 3}}], "queue": "creators"},
        {
            "id": "switched-off",
            "enabled": False,
            "when": [{"strikes": {"at_least": 1}}],
            "status": "removed",
        },
    ],
}


@pytest.fixture
def rules() -> RuleEngine:
    return RuleEngine(RuleSet.from_json(json.dumps(RULES_V1)))


class Queue:
    """A review queue that remembers what it was given."""

    def __init__(self) -> None:
        self.jobs: list[tuple[int, str, int]] = []

    def enqueue(self, item_id: int, *, reason: str, detected_by: Actor, priority: int = 0) -> int:
        self.jobs.append((item_id, str(detected_by), priority))
        return len(self.jobs)


class Strikes:
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def count(self, creator: str) -> int:
        return self.counts.get(creator, 0)


# ------------------------------------------------------------------ the file
def test_rule_file_round_trips(rules: RuleEngine) -> None:
    again = RuleSet.from_json(rules.rules.to_json())
    assert again == rules.rules and [r.id for r in again.rules][:2] == [
        "toxic-caption",
        "known-bad",
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"rules": []},  # empty: refused, never "approve everything"
        {"format": 2},
        {"version": 0},
        {"extra": 1},
        {"rules": [{"id": "a", "when": [{"strikes": {"at_least": 1}}], "status": "eligible"}]},
        {"rules": [{"id": "a", "when": [{"strikes": {"at_least": 1}}]}]},  # no action
        {"rules": [{"id": "a", "when": [], "status": "removed"}]},  # no condition
        {"rules": [{"id": "A b", "when": [{"strikes": {"at_least": 1}}], "queue": "q"}]},
        {"rules": [{"id": "a", "when": [{"score": {"name": "x"}}], "queue": "q"}]},
        {
            "rules": [
                {
                    "id": "a",
                    "when": [{"strikes": {"at_least": 1}, "match": {}}],
                    "queue": "q",
                }
            ]
        },
        {"rules": [RULES_V1["rules"][0], RULES_V1["rules"][0]]},  # duplicate ids
    ],
)
def test_invalid_rule_files_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(RuleError):
        RuleSet.from_json(json.dumps(RULES_V1 | change))
    with pytest.raises(RuleError):
        RuleSet.from_json("{not json")


# ------------------------------------------------------------------ evaluation
def test_most_severe_rule_wins_whatever_the_order(rules: RuleEngine) -> None:
    facts = ItemFacts(1, (MatchFact("csam", "pdq", 20),), {"text": {"toxicity": 0.95}}, strikes=5)
    d = rules.evaluate(facts)
    assert d.status is Status.REMOVED and d.rule_id == "known-bad"
    assert d.fired == ("toxic-caption", "known-bad", "repeat-offender")
    assert str(d.actor) == "rule:known-bad" and "rules v7" in d.reason
    assert {(r.queue, r.priority) for r in d.routes} == {
        ("text", 5),
        ("legal", 90),
        ("creators", 0),
    }


def test_conditions_and_absent_signals(rules: RuleEngine) -> None:
    assert rules.evaluate(ItemFacts(1)).status is None
    assert rules.evaluate(ItemFacts(1)).fired == ()
    near = rules.evaluate(ItemFacts(1, (MatchFact("other", "pdq", 8),)))
    assert near.status is Status.QUARANTINED
    assert rules.evaluate(ItemFacts(1, (MatchFact("other", "pdq", 9),))).status is None
    low = rules.evaluate(ItemFacts(1, signals={"text": {"toxicity": 0.5}}))
    assert low.status is None
    review = rules.evaluate(ItemFacts(1, strikes=3))
    assert (
        review.status is None and review.verdict() is None and review.routes[0].queue == "creators"
    )
    with pytest.raises(RuleError):
        rules.evaluate(ItemFacts(1, signals={"text": {"toxicity": "high"}}))


def test_evaluation_does_not_mutate_its_inputs(rules: RuleEngine) -> None:
    signals = {"text": {"toxicity": 0.99}}
    before = json.dumps(signals)
    rules.evaluate(ItemFacts(1, signals=signals))
    assert json.dumps(signals) == before


# ------------------------------------------------------------------ through the gate, both backends
@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Gate, Banks, Ledger, sa.Engine]]:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    gate = Gate(engine, sink=ledger, clock=lambda: 1000.0)
    try:
        yield gate, Banks(engine, gate=gate, clock=lambda: 1000.0), ledger, engine
    finally:
        ledger.close()
        engine.dispose()


def _populate(gate: Gate, banks: Banks) -> None:
    """Items 1–4: in the csam bank, a near-copy of spam, clean, by a repeat offender."""
    banks.create("csam", action=Status.REMOVED)
    banks.create("spam", action=Status.NOT_RECOMMENDABLE)
    banks.add("csam", "pdq", BASE)
    banks.add("spam", "pdq", OTHER)
    for item, creator in [(1, "a"), (2, "b"), (3, "b"), (4, "repeat")]:
        gate.upload(item, actor=Actor("uploader", creator))
        gate.decide(item, Status.ELIGIBLE, reason="fine at the time", actor=Actor("rule", "old"))
    banks.store_signals(1, [SignalValue("pdq", BASE, 0, 100)])
    banks.store_signals(2, [SignalValue("pdq", f"{int(OTHER, 16) ^ 0x1F:064x}", 0, 100)])
    banks.store_signals(3, [SignalValue("pdq", f"{int(BASE, 16) ^ ((1 << 256) - 1):064x}", 0, 100)])


def test_apply_goes_through_the_gate_as_the_rule(store, rules: RuleEngine) -> None:
    gate, banks, _, _ = store
    _populate(gate, banks)
    facts = StoredFacts(gate, banks, strikes=Strikes({"repeat": 4}))
    queue = Queue()
    queues = {"legal": queue, "text": queue, "creators": queue}
    decision, moved = rules.apply(gate, facts(1), queues=queues)
    assert gate.status(1) is Status.REMOVED and moved[0].actor == "rule:known-bad"
    assert queue.jobs == [(1, "rule:known-bad", 90)]
    _, moved = rules.apply(gate, facts(4), queues=queues)
    assert moved == [] and gate.status(4) is Status.ELIGIBLE
    assert queue.jobs[-1] == (4, "rule:repeat-offender", 0)
    with pytest.raises(RuleError):
        rules.apply(gate, facts(4))  # routes to a queue it was not given
    assert decision.fired == ("known-bad", "near-copy")


def test_rule_screener_in_the_pipeline(store, rules: RuleEngine) -> None:
    gate, banks, _, _ = store
    banks.create("csam", action=Status.REMOVED)
    banks.add("csam", "pdq", BASE)
    gate.upload(9, actor=UP)
    banks.store_signals(9, [SignalValue("pdq", BASE, 0, 100)])
    queue = Queue()
    step = RuleScreener(rules, StoredFacts(gate, banks), queues={"legal": queue})
    assert gate.screen(9, b"", [step]) is Status.REMOVED
    assert gate.history(9)[-1].actor == "rule:known-bad" and queue.jobs == [
        (9, "rule:known-bad", 90)
    ]
    gate.upload(10, actor=UP)
    failing = RuleScreener(rules, lambda i: ItemFacts(i, signals={"text": {"toxicity": "?"}}))
    assert gate.screen(10, b"", [failing]) is Status.NOT_RECOMMENDABLE  # fails closed


def test_dry_run_reports_and_changes_nothing(store, rules: RuleEngine) -> None:
    gate, banks, ledger, engine = store
    _populate(gate, banks)
    facts = StoredFacts(gate, banks, strikes=Strikes({"repeat": 4}))
    statuses = {i: gate.status(i) for i in (1, 2, 3, 4)}
    size = ledger.size()
    with engine.connect() as conn:
        history = conn.execute(sa.select(sa.func.count()).select_from(transitions)).scalar()
    report = dry_run(rules, gate, facts)
    assert {i: gate.status(i) for i in (1, 2, 3, 4)} == statuses
    assert ledger.size() == size
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(transitions)).scalar() == history
    by_item = {it.item_id: it for it in report.items}
    assert by_item[1].decision.status is Status.REMOVED and by_item[1].would_move
    assert by_item[2].decision.rule_id == "near-copy" and by_item[2].would_move
    assert by_item[3].decision.status is None and not by_item[3].would_move
    assert by_item[4].decision.routes[0].queue == "creators" and not by_item[4].would_move
    assert by_item[1].last_actor == "rule:old"
    summary = report.summary()
    assert summary["would_move"] == 2 and summary["rules_version"] == 7
    assert summary["rules"]["known-bad"] == {"fired": 1, "decided": 1, "would_move": 1}
    assert summary["queued"] == {"legal": 1, "creators": 1}
    assert json.loads(report.to_json())["summary"] == summary


def test_dry_run_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mod.db'}"
    engine = open_engine(url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    try:
        gate = Gate(engine, sink=ledger)
        _populate(gate, Banks(engine, gate=gate))
        size = ledger.size()
    finally:
        engine.dispose()
    (tmp_path / "rules.json").write_text(json.dumps(RULES_V1))
    runner = CliRunner()
    args = ["rules", "dry-run", "--store", url, "--rules", str(tmp_path / "rules.json")]
    result = runner.invoke(moderation_app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["summary"]["would_move"] == 2 and len(out["items"]) == 4
    assert ledger.size() == size
    ledger.close()
    engine = open_engine(url)
    try:
        gate = Gate(engine, sink=ledger)
        assert {gate.status(i) for i in (1, 2, 3, 4)} == {Status.ELIGIBLE}
    finally:
        engine.dispose()
    (tmp_path / "bad.json").write_text("{}")
    bad = runner.invoke(moderation_app, [*args[:4], "--rules", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "invalid rule set" in bad.stderr

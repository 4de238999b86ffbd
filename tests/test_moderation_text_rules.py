"""Caption scores and text-bank matches are rule facts: rules judge them and route to queues."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Moderation, RuleSet, Status, moderation_app
from trustfeed.moderation._cli_video import rules_app  # noqa: F401  (registers the commands)
from trustfeed.moderation._rules import ItemFacts, MatchFact, RuleEngine, StoredFacts
from trustfeed.moderation.text import Score

RULES = {
    "version": 1,
    "rules": [
        {
            "id": "profane-caption",
            "when": [{"score": {"name": "text.fake-toxicity.toxic", "at_least": 0.9}}],
            "status": "not_recommendable",
            "queue": "hate-text",
            "priority": 5,
        },
        {
            "id": "slur-list",
            "when": [{"match": {"bank": "slurs", "signal": "text"}}],
            "queue": "hate-text",
            "priority": 50,
        },
    ],
}


class FakeToxicity:
    """0.95 for texts containing "awful", else 0.05; raises on "crash" (a broken model)."""

    name = "fake-toxicity"
    version = "0.1"

    def scores(self, texts: Sequence[str]) -> list[list[Score]]:
        if any("crash" in t for t in texts):
            raise RuntimeError("model failed to load")
        return [
            [Score(self.name, self.version, "toxic", 0.95 if "awful" in t else 0.05)] for t in texts
        ]


def _image(seed: int) -> bytes:
    """A textured image whose PDQ has full quality (random blocks, seeded)."""
    blocks = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(blocks).resize((256, 256), Image.Resampling.BILINEAR).save(out, "PNG")
    return out.getvalue()


def _open(url: str, ledger: Ledger) -> Moderation:
    m = Moderation.open(
        url, sink=ledger, text_classifiers=[FakeToxicity()], rules=RuleSet.model_validate(RULES)
    )
    assert m.text_banks is not None
    m.text_banks.create("slurs", action=Status.AGE_RESTRICTED)
    m.text_banks.add_phrase("slurs", "badword")
    m.text_banks.create("places", negative=True)
    m.text_banks.add_phrase("places", "badwordton")
    return m


@pytest.fixture
def mod(database_url: str) -> Iterator[Moderation]:
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    m = _open(database_url, ledger)
    try:
        yield m
    finally:
        m.close()
        ledger.close()


def _queued(m: Moderation, queue: str) -> list[tuple[int, ...]]:
    assert m.queue is not None
    return [j.items for j in m.queue.pending(queue=queue)]


def test_a_caption_score_rule_restricts_and_routes_to_its_queue(mod: Moderation) -> None:
    assert mod.submit(1, _image(1), uploader="c1", caption="my cat") is Status.ELIGIBLE
    assert mod.submit(2, _image(2), uploader="c1", caption="an awful thing") is (
        Status.NOT_RECOMMENDABLE
    )
    assert mod.gate.history(2)[-1].actor == "rule:profane-caption"
    assert "text.fake-toxicity.toxic=0.95" in mod.gate.history(2)[-1].reason
    assert _queued(mod, "hate-text") == [(2,)] and _queued(mod, "default") == []
    assert mod.text_scores is not None
    assert [(s.model, s.version, s.value) for s in mod.text_scores.latest(2)] == [
        ("fake-toxicity", "0.1", 0.95)
    ]


def test_a_text_bank_match_is_a_rule_fact_and_an_allow_list_suppresses_it(
    mod: Moderation,
) -> None:
    assert mod.submit(1, _image(1), uploader="c1", caption="you b4dword") is Status.AGE_RESTRICTED
    assert _queued(mod, "hate-text") == [(1,)]  # the rule routed the bank match to review
    assert mod.submit(2, _image(2), uploader="c1", caption="hi from Badwordton") is (
        Status.ELIGIBLE
    )
    assert _queued(mod, "hate-text") == [(1,)]


def test_facts_hold_the_stored_scores_and_text_matches(mod: Moderation) -> None:
    mod.submit(1, _image(1), uploader="c1", caption="an awful badword")
    facts = StoredFacts(
        mod.gate, mod.banks, text_banks=mod.text_banks, text_scores=mod.text_scores
    )(1)
    assert facts.signals == {"text": {"fake-toxicity": {"toxic": 0.95}}}
    assert [(f.bank, f.signal, f.distance) for f in facts.matches] == [("slurs", "text", 0)]
    assert StoredFacts(mod.gate, mod.banks)(1).signals == {}  # no text sources: no text facts


def test_a_failing_text_step_fails_closed_before_the_rules_run(mod: Moderation) -> None:
    assert mod.submit(1, _image(1), uploader="c1", caption="crash") is Status.NOT_RECOMMENDABLE
    assert mod.gate.history(1)[-1].actor == "system:fail-closed"
    assert _queued(mod, "hate-text") == []


def test_score_names_may_hold_dots_and_slashes() -> None:
    rules = RuleEngine(
        RuleSet.model_validate(
            {
                "version": 1,
                "rules": [
                    {
                        "id": "near-hate",
                        "when": [
                            {
                                "score": {
                                    "name": "text.sentence-transformers/all-MiniLM-L6-v2.hate",
                                    "at_least": 0.8,
                                }
                            }
                        ],
                        "queue": "hate-text",
                    },
                    {
                        "id": "dotted",
                        "when": [{"score": {"name": "text.acme.tox-1.5.toxic", "at_least": 0.5}}],
                        "status": "quarantined",
                    },
                ],
            }
        )
    )
    signals = {
        "text": {
            "sentence-transformers/all-MiniLM-L6-v2": {"hate": 0.85},
            "acme.tox-1.5": {"toxic": 0.7},
        }
    }
    decision = rules.evaluate(ItemFacts(1, (MatchFact("x", "pdq", 3),), signals))
    assert decision.fired == ("near-hate", "dotted") and decision.status is Status.QUARANTINED
    assert rules.evaluate(ItemFacts(1, signals={"text": {"acme": {"toxic": 0.9}}})).fired == ()


def test_dry_run_command_sees_caption_facts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mod.db'}"
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    m = _open(url, ledger)
    try:
        m.submit(1, _image(1), uploader="c1", caption="a fine day")
        m.submit(2, _image(2), uploader="c1", caption="an awful day")
    finally:
        m.close()
        ledger.close()
    stricter = json.loads(json.dumps(RULES))
    stricter["rules"][0]["when"][0]["score"]["at_least"] = 0.01
    stricter["rules"][0]["status"] = "quarantined"
    (tmp_path / "rules.json").write_text(json.dumps(stricter))
    args = ["rules", "dry-run", "--store", url, "--rules", str(tmp_path / "rules.json")]
    result = CliRunner().invoke(moderation_app, args)
    assert result.exit_code == 0, result.output
    items = {row["item"]: row for row in json.loads(result.stdout)["items"]}
    assert items[1]["would_be"] == items[2]["would_be"] == "quarantined"
    assert items[1]["would_move"] and items[2]["would_move"]

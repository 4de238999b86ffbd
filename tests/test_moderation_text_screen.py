"""The text screener: bank matches first, then classifier rules; through the gate and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

import trustfeed.moderation._cli_text  # noqa: F401  (adds screen-text to moderation_app)
from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Actor, Gate, Status, moderation_app
from trustfeed.moderation.text import (
    ClassifierRule,
    Score,
    TextBanks,
    TextScoreLog,
    TextScreener,
)
from trustfeed.storage import open_engine

UP = Actor("uploader", "creator-1")


class FakeToxicity:
    """A stand-in classifier: 0.95 for texts containing "awful", else 0.05."""

    name = "fake-toxicity"
    version = "0.1"

    def scores(self, texts: Sequence[str]) -> list[list[Score]]:
        return [
            [Score(self.name, self.version, "toxic", 0.95 if "awful" in t else 0.05)] for t in texts
        ]


RULES = [ClassifierRule("fake-toxicity", "toxic", 0.9, Status.NOT_RECOMMENDABLE)]


@pytest.fixture
def setup(database_url: str) -> Iterator[tuple[Gate, TextScreener, dict[int, str], TextScoreLog]]:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    banks = TextBanks(engine)
    banks.create("spam", action=Status.QUARANTINED)
    banks.add_phrase("spam", "spamlink")
    captions: dict[int, str] = {}
    log = TextScoreLog(engine, clock=lambda: 5.0)
    screener = TextScreener(
        banks=banks,
        classifiers=[FakeToxicity()],
        rules=RULES,
        captions=lambda item, media: captions.get(item),
        score_log=log,
    )
    try:
        yield Gate(engine, sink=ledger, clock=lambda: 1000.0), screener, captions, log
    finally:
        ledger.close()
        engine.dispose()


def test_gate_moves_an_offending_caption_per_the_bank_action(setup) -> None:
    gate, screener, captions, log = setup
    captions.update({1: "follow my sp4m l1nk", 2: "a lovely walk by the sea", 3: "awful stuff"})
    for item in (1, 2, 3, 4):
        gate.upload(item, actor=UP)
    assert gate.screen(1, b"", [screener]) is Status.QUARANTINED
    assert gate.screen(2, b"", [screener]) is Status.ELIGIBLE
    assert gate.screen(3, b"", [screener]) is Status.NOT_RECOMMENDABLE
    assert gate.screen(4, b"", [screener]) is Status.ELIGIBLE  # no caption: no objection
    last = gate.history(1)[-1]
    assert last.actor == "rule:text-bank:spam" and "spamlink" not in last.reason
    assert gate.history(3)[-1].actor == "rule:text-model:fake-toxicity"
    assert log.scores(1) == [Score("fake-toxicity", "0.1", "toxic", 0.05)]
    assert log.scores(4) == []


def test_a_failing_screener_fails_closed(setup) -> None:
    gate, _, _, _ = setup

    def broken(item: int, media: bytes) -> str:
        raise RuntimeError("caption store down")

    gate.upload(7, actor=UP)
    assert gate.screen(7, b"", [TextScreener(classifiers=[], captions=broken)]) is (
        Status.NOT_RECOMMENDABLE
    )


def test_report_has_every_score_even_when_a_bank_matched(setup) -> None:
    _, screener, _, _ = setup
    report = screener.screen_text("awful spamlink")
    assert report.verdict is not None and report.verdict.status is Status.QUARANTINED
    assert report.score("fake-toxicity", "toxic") == 0.95
    assert [r.label for r in report.fired] == ["toxic"]
    assert json.loads(json.dumps(report.to_json()))["verdict"]["status"] == "quarantined"


def test_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="threshold"):
        ClassifierRule("m", "l", 1.5, Status.REMOVED)
    with pytest.raises(ValueError, match="restrict"):
        ClassifierRule("m", "l", 0.5, Status.ELIGIBLE)


runner = CliRunner()


def test_cli_screen_text_prints_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_engine(url)
    banks = TextBanks(engine)
    banks.create("mild", action=Status.NOT_RECOMMENDABLE)
    banks.add_phrase("mild", "badword")
    engine.dispose()
    result = runner.invoke(
        moderation_app, ["screen-text", "such a B4D W0RD", "--store", url, "--no-embeddings"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["normalized"] == "such a bad word"
    assert out["bank_matches"][0]["bank"] == "mild"
    assert out["verdict"]["status"] == "not_recommendable"
    (score,) = out["scores"]
    assert score["model"] == "alt-profanity-check" and score["version"]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(moderation_app, ["screen-text", "  "])
    assert result.exit_code == 2 and "error: the text is empty" in result.output
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    result = runner.invoke(moderation_app, ["screen-text", "hi", "--store", missing])
    assert result.exit_code == 2 and result.output.startswith("error:")

"""Text banks on SQLite and PostgreSQL: phrases and patterns matched through the tricks,
and the media banks' controls (pauses, allow-list banks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Actor, Gate, ModerationError, Status, UnknownBank
from trustfeed.moderation.text import (
    InvalidPattern,
    TextBank,
    TextBanks,
    TextScreener,
    compile_pattern,
)
from trustfeed.storage import open_engine


@pytest.fixture
def banks(database_url: str) -> Iterator[TextBanks]:
    engine = open_engine(database_url)
    try:
        yield TextBanks(engine, clock=lambda: 1000.0)
    finally:
        engine.dispose()


@pytest.fixture
def stocked(banks: TextBanks) -> TextBanks:
    banks.create("mild", action=Status.NOT_RECOMMENDABLE)
    banks.create("spam", action=Status.QUARANTINED)
    banks.add_phrase("mild", "badword", note="stand-in test word")
    banks.add_phrase("spam", "spamlink")
    banks.add_pattern("spam", r"\bfree\s+mone?y\b")
    return banks


@pytest.mark.parametrize(
    "text",
    [
        "what a badword",
        "what a b\u200badw\u200cord",
        "what a Ьаdwоrd",
        "what a b4dw0rd",
        "what a b a d w o r d",
        "what a b.a.d.w.o.r.d",
        "what a baaaadwoooord!!!",
        "BADWORD",
    ],
)
def test_a_phrase_matches_through_every_trick(stocked: TextBanks, text: str) -> None:
    hits = stocked.match(text)
    assert [(m.bank, m.kind, m.action) for m in hits] == [
        ("mild", "phrase", Status.NOT_RECOMMENDABLE)
    ]


def test_patterns_match_the_normal_form_and_the_most_severe_comes_first(
    stocked: TextBanks,
) -> None:
    hits = stocked.match("FREE  m0ney via sp4ml1nk, you badword")
    assert hits[0].action is Status.QUARANTINED
    assert {(m.bank, m.kind) for m in hits} == {
        ("spam", "phrase"),
        ("spam", "pattern"),
        ("mild", "phrase"),
    }


def test_clean_text_and_short_phrases_inside_words_do_not_match(stocked: TextBanks) -> None:
    assert stocked.match("a good word about money") == []
    stocked.create("short")
    stocked.add_phrase("short", "ass")  # short: whole words only (Scunthorpe)
    assert stocked.match("a classic bass line") == []
    assert [m.bank for m in stocked.match("what an a s s")] == ["short"]


def test_disabled_banks_do_not_match(stocked: TextBanks) -> None:
    stocked.set_enabled("mild", False)
    assert stocked.match("badword") == []
    stocked.set_enabled("mild", True)
    assert len(stocked.match("badword")) == 1


def test_entries_survive_a_new_instance(database_url: str) -> None:
    engine = open_engine(database_url)
    try:
        TextBanks(engine).create("b")
        TextBanks(engine).add_phrase("b", "spam link")
        again = TextBanks(engine)
        assert [e.key for e in again.entries("b")] == ["spam ink"]
        assert [m.bank for m in again.match("SPAM LINK")] == ["b"]
    finally:
        engine.dispose()


def test_bad_input_is_refused_with_a_clear_error(stocked: TextBanks) -> None:
    with pytest.raises(UnknownBank):
        stocked.add_phrase("nope", "x")
    with pytest.raises(ModerationError, match="already"):
        stocked.create("mild")
    with pytest.raises(ModerationError, match="already holds"):
        stocked.add_phrase("mild", "B4DW0RD")  # same skeleton as "badword"
    with pytest.raises(ModerationError, match="must restrict"):
        stocked.create("x", action=Status.ELIGIBLE)
    with pytest.raises(ModerationError, match="normalises to nothing"):
        stocked.add_phrase("mild", "\u200b ..")
    with pytest.raises(InvalidPattern, match="does not compile"):
        stocked.add_pattern("spam", r"free(money")
    with pytest.raises(InvalidPattern, match="backtracks"):
        stocked.add_pattern("spam", r"(a|aa)+$")
    with pytest.raises(InvalidPattern, match="characters"):
        compile_pattern("a" * 301)
    assert len(stocked.entries("spam")) == 2


# ------------------------------------------------------------------ the media banks' controls
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gated(database_url: str) -> Iterator[tuple[TextBanks, Gate, Clock]]:
    """Text banks that re-scan stored captions through a gate, on a clock the test moves."""
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    clock = Clock()
    gate = Gate(engine, sink=ledger, clock=clock)
    try:
        yield TextBanks(engine, clock=clock, gate=gate), gate, clock
    finally:
        ledger.close()
        engine.dispose()


def _published(banks: TextBanks, gate: Gate, item: int, caption: str) -> None:
    gate.upload(item, actor=Actor("uploader", "c"))
    banks.store_caption(item, caption)
    gate.decide(item, Status.ELIGIBLE, reason="clean at upload", actor=Actor("rule", "no-match"))


def test_a_paused_bank_matches_again_once_its_disable_until_passes(gated) -> None:
    banks, _, clock = gated
    banks.create("mild", action=Status.NOT_RECOMMENDABLE)
    banks.add_phrase("mild", "badword")
    paused = banks.set_enabled("mild", True, disable_until=clock.now + 60)
    assert paused.disable_until == 1060.0 and not paused.active(clock.now)
    assert banks.match("badword") == []
    clock.now += 60
    assert [m.bank for m in banks.match("badword")] == ["mild"]
    assert banks.set_enabled("mild", True).disable_until is None  # switching on clears a pause


def test_an_allow_list_bank_suppresses_the_other_banks_matches(stocked: TextBanks) -> None:
    stocked.create("places", negative=True)
    stocked.add_phrase("places", "badwordton", note="a town whose name holds a banned word")
    assert stocked.get("places").negative and not stocked.get("mild").negative
    found = stocked.match_all("greetings from Badwordton")
    assert [m.bank for m in found.matches] == ["mild"]
    assert [m.bank for m in found.suppressed_by] == ["places"] and found.actionable == []
    assert stocked.match("greetings from Badwordton") == []
    assert [m.bank for m in stocked.match("you badword")] == ["mild"]  # elsewhere: still caught
    stocked.set_enabled("places", False)  # a disabled allow-list suppresses nothing
    assert [m.bank for m in stocked.match("greetings from Badwordton")] == ["mild"]


def test_the_screener_reports_what_an_allow_list_suppressed(stocked: TextBanks) -> None:
    stocked.create("places", negative=True)
    stocked.add_phrase("places", "badwordton")
    report = TextScreener(banks=stocked, classifiers=[]).screen_text("hello Badwordton")
    assert report.verdict is None and report.bank_matches == []
    assert [m["bank"] for m in report.to_json()["suppressed_by"]] == ["places"]


def test_rescans_respect_allow_lists_and_pauses(gated) -> None:
    banks, gate, clock = gated
    banks.create("places", negative=True)
    banks.add_phrase("places", "badwordton")
    banks.create("mild", action=Status.NOT_RECOMMENDABLE)
    _published(banks, gate, 1, "greetings from badwordton")
    _published(banks, gate, 2, "you badword")
    _published(banks, gate, 3, "free money")
    banks.add_phrase("mild", "badword")
    assert gate.eligible_items() == {1, 3}  # item 1's caption is allowed
    banks.add_phrase("places", "you badword")  # an allow-list entry restricts nothing ...
    assert gate.status(2) is Status.NOT_RECOMMENDABLE  # ... and undoes nothing either
    banks.create("spam", action=Status.QUARANTINED)
    banks.set_enabled("spam", True, disable_until=clock.now + 60)
    banks.add_pattern("spam", r"free\s+money")  # paused: re-scans nothing
    assert gate.is_eligible(3)


#: ``moderation_text_banks`` as stores written before negative banks and pauses hold it.
def _old_text_banks(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "moderation_text_banks",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def test_a_store_from_before_allow_lists_still_opens(database_url: str) -> None:
    engine = open_engine(database_url)
    try:
        old = _old_text_banks(sa.MetaData())
        old.create(engine)
        with engine.begin() as conn:
            conn.execute(
                old.insert().values(name="mild", action="quarantined", enabled=True, created_at=1.0)
            )
        banks = TextBanks(engine)
        assert banks.get("mild") == TextBank("mild", Status.QUARANTINED, True, False, None)
        banks.add_phrase("mild", "badword")
        assert [m.bank for m in banks.match("badword")] == ["mild"]
    finally:
        engine.dispose()

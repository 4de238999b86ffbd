"""Text banks on SQLite and PostgreSQL: phrases and patterns matched through the tricks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trustfeed.moderation import ModerationError, Status, UnknownBank
from trustfeed.moderation.text import InvalidPattern, TextBanks, compile_pattern
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

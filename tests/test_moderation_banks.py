"""Banks: thresholds, disabling, allow-lists, re-scan on add, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from trustfeed.custody._records import decode_record
from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import (
    Actor,
    InvalidSignal,
    Moderation,
    ModerationError,
    PDQSignal,
    SignalValue,
    Status,
    UnknownBank,
)

PDQ = PDQSignal()
BASE = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"


def flipped(value: str, bits: int) -> str:
    """``value`` with its lowest ``bits`` bits inverted: a hash exactly ``bits`` away."""
    return f"{int(value, 16) ^ ((1 << bits) - 1):064x}"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mod(database_url: str) -> Iterator[tuple[Moderation, Ledger, Clock]]:
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    clock = Clock()
    m = Moderation.open(database_url, sink=ledger, clock=clock, text_classifiers=[])
    try:
        yield m, ledger, clock
    finally:
        m.close()
        ledger.close()


def pdq(value: str, quality: int = 100) -> list[SignalValue]:
    return [SignalValue("pdq", value, 0, quality)]


def test_each_bank_uses_its_own_threshold(mod) -> None:
    m, _, _ = mod
    m.banks.create("strict", pdq_threshold=10)
    m.banks.create("loose", pdq_threshold=40)
    m.banks.add("strict", "pdq", BASE)
    m.banks.add("loose", "pdq", BASE)
    assert {x.bank for x in m.banks.match(pdq(flipped(BASE, 10))).matches} == {"strict", "loose"}
    assert {x.bank for x in m.banks.match(pdq(flipped(BASE, 11))).matches} == {"loose"}
    hits = m.banks.match(pdq(flipped(BASE, 40))).matches
    assert [(x.bank, x.distance) for x in hits] == [("loose", 40)]
    assert m.banks.match(pdq(flipped(BASE, 41))).matches == []


def test_low_quality_hashes_are_never_matched(mod) -> None:
    m, _, _ = mod
    m.banks.create("b")
    m.banks.add("b", "pdq", BASE)
    assert m.banks.match(pdq(BASE, quality=49)).matches == []
    assert len(m.banks.match(pdq(BASE, quality=50)).matches) == 1


def test_disabled_and_paused_banks_do_not_match(mod) -> None:
    m, _, clock = mod
    m.banks.create("b")
    m.banks.add("b", "pdq", BASE)
    m.banks.set_enabled("b", False)
    assert m.banks.match(pdq(BASE)).matches == []
    m.banks.set_enabled("b", True, disable_until=clock.now + 60)
    assert m.banks.match(pdq(BASE)).matches == []
    clock.now += 61
    assert len(m.banks.match(pdq(BASE)).matches) == 1


def test_negative_banks_suppress_positive_matches(mod) -> None:
    m, _, _ = mod
    m.banks.create("bad", action=Status.REMOVED)
    m.banks.create("benign", negative=True, pdq_threshold=5)
    m.banks.add("bad", "pdq", BASE)
    m.banks.add("benign", "pdq", flipped(BASE, 3))
    allowed = m.banks.match(pdq(BASE))
    assert allowed.matches and allowed.suppressed_by and allowed.actionable == []
    # Far enough from the allow-listed hash, the positive match stands.
    near = m.banks.match(pdq(flipped(BASE, 20)))
    assert near.suppressed_by == [] and near.actionable[0].bank == "bad"


def test_exact_signals_match_only_the_same_bytes(mod) -> None:
    m, _, _ = mod
    m.banks.create("md5s")
    m.banks.add("md5s", "md5", "0CC175B9C0F1B6A831C399E269772661")  # md5("a"), upper case
    values = [SignalValue("md5", "0cc175b9c0f1b6a831c399e269772661")]
    assert m.banks.match(values).matches[0].distance == 0
    assert m.banks.match([SignalValue("md5", "0" * 32)]).matches == []


def test_bank_errors_are_clear(mod) -> None:
    m, _, _ = mod
    m.banks.create("b")
    with pytest.raises(ModerationError, match="already exists"):
        m.banks.create("b")
    with pytest.raises(ModerationError, match="restrict"):
        m.banks.create("c", action=Status.ELIGIBLE)
    with pytest.raises(UnknownBank):
        m.banks.add("nope", "pdq", BASE)
    with pytest.raises(InvalidSignal):
        m.banks.add("b", "pdq", "xyz")


def _image(seed: int) -> bytes:
    """A textured image whose PDQ has full quality (random blocks, seeded)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    im = Image.fromarray(blocks).resize((256, 256), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_adding_a_hash_rescans_published_items(mod) -> None:
    m, ledger, _ = mod
    m.banks.create("bad", action=Status.QUARANTINED)
    m.banks.create("allow", negative=True)
    images = {i: _image(i) for i in range(4)}
    for i, data in images.items():
        assert m.submit(i, data, uploader="creator-1") is Status.ELIGIBLE
    feed = m.feed()
    feed.poll()
    hashes = {i: PDQ.hash_bytes(d) for i, d in images.items()}
    m.banks.add("allow", "pdq", hashes[3][0].value)  # item 3 is allow-listed
    m.banks.add("bad", "pdq", hashes[3][0].value)
    # Item 0 rotated 90°: the bank holds the turned picture's hash; the stored variants find it.
    report = m.banks.add("bad", "pdq", hashes[0][1].value, note="rotated copy")
    assert report.moved == [0] and report.seconds < 60
    assert m.banks.add("bad", "pdq", flipped(hashes[1][0].value, 12)).moved == [1]
    assert m.gate.status(0) is Status.QUARANTINED and m.gate.status(1) is Status.QUARANTINED
    assert m.gate.status(2) is Status.ELIGIBLE and m.gate.status(3) is Status.ELIGIBLE
    last = m.gate.history(0)[-1]
    assert last.actor == "rule:bank:bad" and "re-scan" in last.reason
    assert decode_record(ledger.entry(last.ledger_index))["to"] == "quarantined"
    assert feed.poll().blocked.tolist() == [0, 1]
    # A new upload of the same picture is caught at the door.
    assert m.submit(9, images[0], uploader="creator-2") is Status.QUARANTINED


def test_rescan_never_softens_or_undoes_a_human_decision(mod) -> None:
    m, _, _ = mod
    m.banks.create("soft", action=Status.NOT_RECOMMENDABLE)
    data = _image(5)
    m.submit(1, data, uploader="c")
    m.gate.decide(1, Status.REMOVED, reason="policy 2.1", actor=Actor("moderator", "bob"))
    report = m.banks.add("soft", "pdq", PDQ.hash_bytes(data)[0].value)
    assert report.matched == [1] and report.moved == []
    assert m.gate.status(1) is Status.REMOVED


def test_unsupported_upload_is_not_recommendable(mod, tmp_path: Path) -> None:
    m, _, _ = mod
    assert m.submit(1, b"%PDF-1.4 not an image", uploader="c") is Status.NOT_RECOMMENDABLE
    assert "UnsupportedMedia" in m.gate.history(1)[-1].reason


def test_the_default_pipeline_screens_media_caption_and_uploader(mod) -> None:
    m, _, _ = mod
    m.text_banks.create("spam", action=Status.QUARANTINED)
    m.text_banks.add_phrase("spam", "spamlink")
    assert m.submit(1, _image(1), uploader="c1", caption="my cat video") is Status.ELIGIBLE
    assert m.submit(2, _image(2), uploader="c1", caption="visit s p a m l i n k") is (
        Status.QUARANTINED
    )
    assert m.gate.history(2)[-1].actor.startswith("rule:")
    for n in range(3):  # three strikes: the creator's next upload starts quarantined
        m.strikes.add("c2", decision_id=100 + n, item_id=50 + n, policy_id="known-bad-media")
    assert m.submit(3, _image(3), uploader="c2", caption="fine") is Status.QUARANTINED
    assert [j.items for j in m.queue.pending()] == [(3,)]  # and a person will look at it
    assert m.submit(4, b"\x00\x00\x00\x18ftypmp42 not really a video", uploader="c1") is (
        Status.NOT_RECOMMENDABLE  # unreadable media fails closed
    )


def test_a_new_text_bank_entry_rescans_published_captions(mod) -> None:
    m, ledger, _ = mod
    m.text_banks.create("scam", action=Status.NOT_RECOMMENDABLE)
    assert (
        m.submit(1, _image(1), uploader="c1", caption="free c0ins at scamsite") is Status.ELIGIBLE
    )
    assert m.submit(2, _image(2), uploader="c1", caption="my holiday") is Status.ELIGIBLE
    m.text_banks.add_phrase("scam", "free coins")
    assert m.gate.status(1) is Status.NOT_RECOMMENDABLE and m.gate.status(2) is Status.ELIGIBLE
    last = m.gate.history(1)[-1]
    assert last.actor == "rule:textbank:scam" and "re-scan" in last.reason
    assert decode_record(ledger.entry(last.ledger_index))["to"] == "not_recommendable"
    m.text_banks.set_enabled("scam", False)
    m.text_banks.add_pattern("scam", "holiday")  # a disabled bank re-scans nothing
    assert m.gate.status(2) is Status.ELIGIBLE


def test_rules_in_the_pipeline_route_bank_matches_to_review(database_url: str) -> None:
    from trustfeed.moderation import RuleSet

    rules = RuleSet.model_validate(
        {
            "format": 1,
            "version": 1,
            "rules": [
                {
                    "id": "watchlist",
                    "when": [{"match": {"bank": "watch"}}],
                    "status": "quarantined",
                    "queue": "legal",
                    "priority": 50,
                }
            ],
        }
    )
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    m = Moderation.open(database_url, sink=ledger, text_classifiers=[], rules=rules)
    try:
        m.banks.create("watch", action=Status.NOT_RECOMMENDABLE)
        flagged, clean = _image(7), _image(8)
        m.banks.add("watch", "pdq", PDQ.hash_bytes(flagged)[0].value)
        assert m.submit(1, clean, uploader="c1") is Status.ELIGIBLE
        assert m.submit(2, flagged, uploader="c1") is Status.QUARANTINED
        assert [j.items for j in m.queue.pending()] == [(2,)]
    finally:
        m.close()
        ledger.close()

"""The auditor's check: tampering with stored entries is detected and located.

Tampering is done the way an insider would: straight in the SQL tables.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustfeed.custody import LedgerError, VerificationError
from trustfeed.custody.ledger import (
    Ledger,
    audit_store,
    generate_signing_key,
    leaf_hash,
    parse_signer,
    sign_note,
)
from trustfeed.custody.ledger._merkle import Frontier
from trustfeed.custody.ledger._note import Checkpoint
from trustfeed.storage import open_engine

ORIGIN = "trustfeed.example/ledger"
SIGNER, VERIFIER = generate_signing_key(ORIGIN)


def _build(url: str, sizes: list[int], extra: int = 0) -> list[bytes]:
    """A ledger with a checkpoint at each of ``sizes`` and ``extra`` uncovered entries."""
    written: list[bytes] = []
    with Ledger.open(url, signing_key=SIGNER) as led:
        for size in sizes:
            new = [f"entry {i} {uuid.uuid4().hex[:6]}".encode() for i in range(len(written), size)]
            led.append_many(new)
            written += new
            led.checkpoint()
        tail = [f"late {i}".encode() for i in range(extra)]
        led.append_many(tail)
    return written + tail


def _rewrite_entries(url: str, data: list[bytes]) -> None:
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries"))
        if data:
            conn.execute(
                sa.text("INSERT INTO ledger_entries (idx, data) VALUES (:i, :d)"),
                [{"i": i, "d": d} for i, d in enumerate(data)],
            )
    engine.dispose()


def _rewrite_nodes(url: str, data: list[bytes]) -> None:
    """The thorough insider: recompute every stored subtree hash from forged entries."""
    frontier = Frontier()
    rows = [{"l": lv, "i": ix, "h": h} for d in data for lv, ix, h in frontier.append(leaf_hash(d))]
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_nodes"))
        conn.execute(
            sa.text("INSERT INTO ledger_nodes (level, idx, hash) VALUES (:l, :i, :h)"), rows
        )
    engine.dispose()


def _first_difference(old: list[bytes], new: list[bytes], covered: int) -> int:
    return next(i for i in range(covered) if i >= len(new) or old[i] != new[i])


def test_untouched_store_verifies_and_reports_uncovered_entries(database_url: str) -> None:
    _build(database_url, [3, 8], extra=2)
    report = audit_store(database_url, [VERIFIER])
    assert (report.entries, report.checkpoint_size, report.uncovered) == (10, 8, 2)
    assert report.signed_by == (ORIGIN,) and report.checkpoints_checked == 2


@pytest.mark.parametrize("tamper", ["edit", "drop", "reorder", "insert", "gap", "truncate"])
def test_each_kind_of_tampering_is_detected_on_each_backend(database_url: str, tamper: str) -> None:
    data = _build(database_url, [5, 11])
    forged = list(data)
    if tamper == "edit":
        forged[6] = b"forged"
    elif tamper == "drop":
        del forged[6]
    elif tamper == "reorder":
        forged[6], forged[9] = forged[9], forged[6]
    elif tamper == "insert":
        forged.insert(6, b"inserted")
    elif tamper == "truncate":
        forged = forged[:10]
    if tamper == "gap":
        engine = open_engine(database_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM ledger_entries WHERE idx = 6"))
        engine.dispose()
        expected = 6
    else:
        _rewrite_entries(database_url, forged)
        expected = _first_difference(data, forged, 11)
    with pytest.raises(VerificationError) as caught:
        audit_store(database_url, [VERIFIER])
    assert caught.value.index == expected


tampers = st.sampled_from(["edit", "drop", "reorder", "insert"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    extra=st.integers(0, 3),
    tamper=tampers,
    data=st.data(),
)
def test_random_histories_and_tampering_are_always_detected(
    tmp_path: Path, sizes: list[int], extra: int, tamper: str, data: st.DataObject
) -> None:
    url = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    cps = list(itertools.accumulate(sizes))
    original = _build(url, cps, extra)
    covered = cps[-1]
    pos = data.draw(st.integers(0, covered - 1), label="position")
    forged = list(original)
    if tamper == "edit":
        forged[pos] = original[pos] + b"~"
    elif tamper == "drop":
        del forged[pos]
    elif tamper == "insert":
        forged.insert(pos, b"inserted")
    else:
        other = data.draw(st.integers(0, len(original) - 1), label="swap with")
        if other == pos:
            other = (pos + 1) % len(original)
        if other == pos:
            return  # a one-entry ledger has nothing to reorder
        forged[pos], forged[other] = forged[other], forged[pos]
    _rewrite_entries(url, forged)
    with pytest.raises(VerificationError) as caught:
        audit_store(url, [VERIFIER])
    assert caught.value.index == _first_difference(original, forged, covered)


def test_rewritten_subtree_hashes_fall_back_to_the_last_matching_checkpoint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    data = _build(url, [4, 8, 12])
    forged = list(data)
    forged[9] = b"forged"
    _rewrite_entries(url, forged)
    _rewrite_nodes(url, forged)
    with pytest.raises(VerificationError, match="rewritten") as caught:
        audit_store(url, [VERIFIER])
    assert caught.value.index == 8  # entries 0..7 still match the checkpoint at size 8


def test_a_trusted_checkpoint_must_be_consistent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    _build(url, [3])
    with Ledger.open(url, signing_key=SIGNER) as led:
        trusted = led.checkpoint()
        led.append_many([b"x", b"y"])
        led.checkpoint()
    assert audit_store(url, [VERIFIER], trusted_checkpoint=trusted).trusted_size == 3
    fork = sign_note(Checkpoint(ORIGIN, 2, b"\x07" * 32).body(), [parse_signer(SIGNER)])
    with pytest.raises(VerificationError, match="at size 2"):
        audit_store(url, [VERIFIER], trusted_checkpoint=fork)
    future = sign_note(Checkpoint(ORIGIN, 99, b"\x07" * 32).body(), [parse_signer(SIGNER)])
    with pytest.raises(VerificationError, match="rollback"):
        audit_store(url, [VERIFIER], trusted_checkpoint=future)


def test_wrong_key_missing_checkpoint_and_missing_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    _, other = generate_signing_key(ORIGIN)
    with pytest.raises(LedgerError, match="no SQLite database"):
        audit_store(url, [VERIFIER])
    sa.create_engine(url).dispose()
    sqlite3.connect(tmp_path / "l.db").close()  # an empty database: a file, but no ledger in it
    with pytest.raises(LedgerError, match="no ledger"):
        audit_store(url, [VERIFIER])
    with Ledger.open(url, origin=ORIGIN) as led:
        led.append(b"x")
    with pytest.raises(VerificationError, match="no checkpoint"):
        audit_store(url, [VERIFIER])
    _build(url, [2])
    with pytest.raises(VerificationError, match="no signature from a known key"):
        audit_store(url, [other])
    _, witness = generate_signing_key("witness.example/w", algorithm=4)
    with pytest.raises(VerificationError, match="lacks a valid signature by witness"):
        audit_store(url, [VERIFIER], witness_keys=[witness])

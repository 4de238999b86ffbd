"""The SQL-backed ledger: one suite, run on SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import threading

import pytest

from trustfeed.custody import EntrySink, LedgerError, encode_record
from trustfeed.custody.ledger import (
    Ledger,
    MemoryTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

ORIGIN = "trustfeed.example/ledger"


@pytest.fixture
def ledger(database_url: str):
    led = Ledger.open(database_url, origin=ORIGIN)
    yield led
    led.close()


def _entries(n: int, tag: str = "e") -> list[bytes]:
    return [encode_record("test", n=i, tag=tag) for i in range(n)]


def test_ledger_is_an_entry_sink(ledger: Ledger) -> None:
    sink: EntrySink = ledger
    assert sink.append(b"one") == 0
    assert sink.append_many([b"two", b"three"]) == [1, 2]
    assert sink.append_many([]) == []
    assert ledger.size() == 3
    assert ledger.entries(0, 3) == [b"one", b"two", b"three"]


def test_roots_and_proofs_match_the_reference_tree(ledger: Ledger) -> None:
    data = _entries(21)
    ledger.append_many(data[:5])
    for e in data[5:]:
        ledger.append(e)
    ref = MemoryTree(leaf_hash(e) for e in data)
    for size in range(22):
        assert ledger.root_hash(size) == ref.root(size)
    for size in (1, 7, 8, 16, 21):
        root = ledger.root_hash(size)
        for i in range(size):
            proof = ledger.inclusion_proof(i, size)
            assert proof == ref.inclusion_proof(i, size)
            verify_inclusion(ledger.entry(i), i, size, proof, root)
        for old in range(size + 1):
            proof = ledger.consistency_proof(old, size)
            assert proof == ref.consistency_proof(old, size)
            verify_consistency(old, size, ledger.root_hash(old), root, proof)


def test_state_survives_reopen(database_url: str) -> None:
    with Ledger.open(database_url, origin=ORIGIN) as led:
        led.append_many(_entries(6))
        root = led.root_hash()
    with Ledger.open(database_url) as again:
        assert again.origin == ORIGIN
        assert again.size() == 6 and again.root_hash() == root
        assert again.append(b"more") == 6
        assert again.root_hash() == MemoryTree(leaf_hash(e) for e in [*_entries(6), b"more"]).root()


def test_two_ledgers_appending_alternately_to_one_store(database_url: str) -> None:
    a = Ledger.open(database_url, origin=ORIGIN)
    b = Ledger.open(database_url, origin=ORIGIN)
    written = []
    for i in range(12):
        writer = a if i % 3 else b
        entry = f"entry {i}".encode()
        if i % 4 == 0:
            assert writer.append_many([entry, entry + b"!"]) == [len(written), len(written) + 1]
            written += [entry, entry + b"!"]
        else:
            assert writer.append(entry) == len(written)
            written.append(entry)
    ref = MemoryTree(leaf_hash(e) for e in written)
    for led in (a, b):
        assert led.entries(0, len(written)) == written
        assert led.root_hash() == ref.root()
    a.close()
    b.close()


def test_concurrent_appends_are_group_committed_in_one_order(ledger: Ledger) -> None:
    results: dict[bytes, int] = {}
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(15):
            entry = f"thread {t} entry {i}".encode()
            index = ledger.append(entry)
            with lock:
                results[entry] = index

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == list(range(90))
    stored = ledger.entries(0, 90)
    assert all(stored[i] == e for e, i in results.items())
    assert ledger.root_hash() == MemoryTree(leaf_hash(e) for e in stored).root()


def test_bad_requests_get_clear_errors(ledger: Ledger, database_url: str) -> None:
    ledger.append_many([b"a", b"b"])
    for call in (
        lambda: ledger.inclusion_proof(2),
        lambda: ledger.inclusion_proof(-1),
        lambda: ledger.inclusion_proof(0, 3),
        lambda: ledger.consistency_proof(3),
        lambda: ledger.consistency_proof(2, 1),
        lambda: ledger.root_hash(3),
        lambda: ledger.entry(2),
        lambda: ledger.entries(1, 0),
    ):
        with pytest.raises(LedgerError):
            call()
    with pytest.raises(TypeError):
        ledger.append("text")  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="origin"):
        Ledger.open(database_url, origin="another.example/log")


def test_closed_ledger_refuses_appends(database_url: str) -> None:
    led = Ledger.open(database_url, origin=ORIGIN)
    led.close()
    with pytest.raises(LedgerError, match="closed"):
        led.append(b"late")


def test_open_without_create_needs_an_existing_ledger(database_url: str) -> None:
    with pytest.raises(LedgerError, match="no ledger"):
        Ledger.open(database_url, create=False)


def test_the_issue_api_with_a_bare_ed25519_key(tmp_path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from trustfeed.custody import Ledger as PublicLedger
    from trustfeed.custody import verify_consistency, verify_inclusion
    from trustfeed.custody.ledger import Verifier, open_checkpoint

    key = Ed25519PrivateKey.generate()
    led = PublicLedger.open(f"sqlite:///{tmp_path / 'ledger.db'}", signing_key=key)
    try:
        first = led.append(b"entry bytes")
        assert led.append_many([b"a", b"b"]) == [1, 2] and first == 0
        assert verify_inclusion(b"a", 1, 3, led.inclusion_proof(1, 3), led.root_hash(3))
        proof = led.consistency_proof(1, 3)
        assert verify_consistency(1, 3, led.root_hash(1), led.root_hash(3), proof)
        raw = key.public_key().public_bytes_raw()
        checkpoint, _ = open_checkpoint(led.checkpoint(), [Verifier(led.origin, 0x01, raw)])
        assert checkpoint.size == 3 and checkpoint.root == led.root_hash()
    finally:
        led.close()

"""The vault behind the real PolicyPoint and Ledger (invariants 1, 2 and 7)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from trustfeed.custody import (
    AccessDenied,
    Action,
    DataClass,
    KeyedHasher,
    Principal,
    Role,
    decode_record,
)
from trustfeed.custody.ledger import Ledger, audit_store, generate_signing_key
from trustfeed.custody.policy import PolicyPoint
from trustfeed.custody.vault import ErasedError, Vault, record_request, user_request
from trustfeed.storage import open_engine

ALICE = "alice-7f3a"
OPERATOR = Principal("ingest-svc", Role.OPERATOR, "US")
LICENSOR = Principal("licensor-co", Role.LICENSOR, "US")
AS_ALICE = Principal(ALICE, Role.USER, "US")


@dataclass
class Boundary:
    url: str
    engine: sa.Engine
    vault: Vault
    ledger: Ledger
    verifier: str


@pytest.fixture
def boundary(database_url: str) -> Iterator[Boundary]:
    signer, verifier = generate_signing_key("trustfeed.test")
    hasher = KeyedHasher({1: b"k" * 32}, current=1)
    engine = open_engine(database_url)
    ledger = Ledger.open(database_url, signing_key=signer)
    point = PolicyPoint(sink=ledger, hasher=hasher, domestic="US", engine=engine)
    vault = Vault(
        engine,
        authorizer=point,
        sink=ledger,
        keks={"kek-1": b"\x01" * 32},
        current_kek="kek-1",
        owner_hasher=hasher,
    )
    yield Boundary(database_url, engine, vault, ledger, verifier)
    ledger.close()
    engine.dispose()


def profile_request(principal: Principal, action: Action, record_id: str = "p1"):
    return record_request(
        principal,
        action,
        owner=ALICE,
        record_id=record_id,
        data_class=DataClass.PUBLIC_PROFILE,
        residency="US",
        purpose="ingest",
    )


def decisions(ledger: Ledger) -> list[dict]:
    entries = [decode_record(e) for e in ledger.entries(0, ledger.size())]
    return [e for e in entries if e["kind"] == "decision"]


def test_every_call_is_one_recorded_decision_and_restricted_writes_are_denied(
    boundary: Boundary,
) -> None:
    vault, ledger = boundary.vault, boundary.ledger
    vault.put(profile_request(OPERATOR, Action.WRITE), b"alice, likes cats")
    restricted = record_request(
        OPERATOR,
        Action.WRITE,
        owner=ALICE,
        record_id="m1",
        data_class=DataClass.MESSAGES,
        residency="US",
        purpose="marketing",  # ingest may write restricted classes; no other purpose may
    )
    with pytest.raises(AccessDenied):
        vault.put(restricted, b"should never be stored")
    with boundary.engine.connect() as conn:  # the denied write stored nothing
        ids = conn.execute(sa.text("SELECT id FROM vault_records")).scalars().all()
    assert ids == ["p1"]
    got = vault.get(profile_request(AS_ALICE, Action.READ))
    assert got.data == b"alice, likes cats"
    assert [(d["action"], d["decision"]) for d in decisions(ledger)] == [
        ("write", "allow"),
        ("write", "deny"),
        ("read", "allow"),
    ]


def test_the_licensor_gets_nothing(boundary: Boundary) -> None:
    vault = boundary.vault
    vault.put(profile_request(OPERATOR, Action.WRITE), b"alice")
    calls = [
        lambda: vault.get(profile_request(LICENSOR, Action.READ)),
        lambda: vault.export(
            user_request(LICENSOR, Action.EXPORT, owner=ALICE, residency="US", purpose="x")
        ),
        lambda: vault.records_of(
            user_request(
                LICENSOR,
                Action.READ,
                owner=ALICE,
                residency="US",
                purpose="metrics_release",
                data_class=DataClass.PUBLIC_PROFILE,
            )
        ),
    ]
    for call in calls:
        with pytest.raises(AccessDenied):
            call()
    assert [d["decision"] for d in decisions(boundary.ledger)] == ["allow", "deny", "deny", "deny"]


def test_erasure_makes_data_unreadable_and_the_ledger_still_verifies(boundary: Boundary) -> None:
    vault, ledger = boundary.vault, boundary.ledger
    vault.put(profile_request(OPERATOR, Action.WRITE), b"alice")
    ledger.checkpoint()
    erase = user_request(AS_ALICE, Action.ERASE, owner=ALICE, residency="US", purpose="erasure")
    receipt = vault.erase(erase)
    assert decode_record(ledger.entry(receipt.ledger_index))["kind"] == "erasure"
    with pytest.raises(ErasedError):
        vault.export(
            user_request(AS_ALICE, Action.EXPORT, owner=ALICE, residency="US", purpose="x")
        )
    ledger.checkpoint()
    report = audit_store(boundary.url, [boundary.verifier])
    assert report.entries == ledger.size() == report.checkpoint_size

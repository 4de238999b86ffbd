"""ARCHITECTURE invariants 1, 2, 3 and 7 across the assembled custody boundary.

Each component has its own suite; these tests take the real ``Custody``
(ledger, policy point, vault, pseudonyms over one store, on SQLite and
PostgreSQL) and check the promises an auditor is actually given.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustfeed.custody import (
    AccessDenied,
    AccessRequest,
    Action,
    DataClass,
    Principal,
    Resource,
    Role,
    VerificationError,
    decode_record,
)
from trustfeed.custody._boundary import Custody
from trustfeed.custody._keyfile import CustodianKeys
from trustfeed.custody.ledger import Ledger, audit_store, generate_signing_key
from trustfeed.custody.vault import ErasedError, Vault, record_request, user_request

DOMESTIC = "US"
KEYS = CustodianKeys(
    keks={"kek-1": b"\x01" * 32},
    current_kek="kek-1",
    pseudonym_keys={1: b"\x02" * 32},
    current_pseudonym=1,
)
SIGNER, VERIFIER = generate_signing_key("trustfeed.test/ledger")
ALICE = "alice-0c1d"
INGEST = Principal("ingest-svc", Role.OPERATOR, DOMESTIC)
LICENSOR = Principal("licensor-co", Role.LICENSOR, DOMESTIC)
LICENSOR_ABROAD = Principal("licensor-co", Role.LICENSOR, "XX")
REQUESTER = Principal("c-cai", Role.CUSTODIAN, DOMESTIC)  # two others approve (four eyes)
CUSTODIANS = (
    Principal("c-ana", Role.CUSTODIAN, DOMESTIC),
    Principal("c-ben", Role.CUSTODIAN, DOMESTIC),
)
PERSONAL = [d for d in DataClass if d.personal]
SECRET = b"alice's private message: meet at 5"


@pytest.fixture
def custody(database_url: str) -> Iterator[Custody]:
    with Custody.open(database_url, keys=KEYS, domestic=DOMESTIC, signing_key=SIGNER) as opened:
        yield opened


def _write_request(record_id: str, data_class: DataClass = DataClass.MESSAGES) -> AccessRequest:
    return record_request(
        INGEST, Action.WRITE, owner=ALICE, record_id=record_id, data_class=data_class,
        residency=DOMESTIC, purpose="ingest",
    )  # fmt: skip


def _store(custody: Custody, record_id: str, data_class: DataClass, data: bytes) -> None:
    custody.vault.put(_write_request(record_id, data_class), data)


def _records(ledger: Ledger) -> list[dict]:
    return [decode_record(e) for e in ledger.entries(0, ledger.size())]


# -- invariant 1: no personal-data read bypasses the policy point; every decision is logged --

#: Every public Vault method, by whether it touches a user's records. A new
#: method fails this test until someone decides which side it is on.
VAULT_GATED = {"put", "put_many", "get", "records_of", "export", "erase"}
VAULT_UNGATED = {
    "owner_digest": "a keyed hash of an id the caller already has",
    "rotate_kek": "rewraps data keys; never opens a record (custodian CLI, ledger-recorded)",
    "current_kek": "the id of the current key-encryption key",
    "is_erased": "whether a tombstone exists for the user; opens no record",
}


def test_every_public_vault_method_is_classified() -> None:
    public = {name for name, _ in inspect.getmembers(Vault) if not name.startswith("_")}
    assert public == VAULT_GATED | set(VAULT_UNGATED)


class CountingAuthorizer:
    """Wraps the real policy point; counts decisions and remembers their requests."""

    def __init__(self, inner) -> None:
        self.inner, self.requests = inner, []

    def decide(self, request: AccessRequest):
        self.requests.append(request)
        return self.inner.decide(request)

    def enforce(self, request: AccessRequest):
        self.requests.append(request)
        return self.inner.enforce(request)


def test_each_gated_vault_call_is_exactly_one_decision_and_one_ledger_record(custody) -> None:
    _store(custody, "m1", DataClass.MESSAGES, SECRET)
    counting = CountingAuthorizer(custody.policy)
    custody.vault._authorizer = counting  # observe the real point; nothing else changes
    alice = Principal(ALICE, Role.USER, DOMESTIC)
    calls = {
        "get": lambda: custody.vault.get(
            record_request(
                alice,
                Action.READ,
                owner=ALICE,
                record_id="m1",
                data_class=DataClass.MESSAGES,
                residency=DOMESTIC,
                purpose="self",
            )
        ),
        "records_of": lambda: custody.vault.records_of(
            user_request(
                alice,
                Action.READ,
                owner=ALICE,
                residency=DOMESTIC,
                purpose="self",
                data_class=DataClass.MESSAGES,
            )
        ),
        "export": lambda: custody.vault.export(
            user_request(alice, Action.EXPORT, owner=ALICE, residency=DOMESTIC, purpose="self")
        ),
        "put": lambda: _store(custody, "m2", DataClass.MESSAGES, b"second"),
        "put_many": lambda: custody.vault.put_many([(_write_request("m3"), b"third")]),
        "erase": lambda: custody.vault.erase(
            user_request(alice, Action.ERASE, owner=ALICE, residency=DOMESTIC, purpose="erasure")
        ),
    }
    assert set(calls) == VAULT_GATED
    for name, call in calls.items():
        before, size = len(counting.requests), custody.ledger.size()
        call()
        assert len(counting.requests) == before + 1, name
        new = _records(custody.ledger)[size:]
        assert [r["kind"] for r in new if r["kind"] == "decision"] == ["decision"], name


def test_a_read_returns_only_after_its_decision_is_durable(custody, database_url: str) -> None:
    _store(custody, "m1", DataClass.MESSAGES, SECRET)
    alice = Principal(ALICE, Role.USER, DOMESTIC)
    request = record_request(
        alice, Action.READ, owner=ALICE, record_id="m1", data_class=DataClass.MESSAGES,
        residency=DOMESTIC, purpose="self",
    )  # fmt: skip
    seen = []
    real_enforce = custody.policy.enforce
    custody.vault._authorizer.enforce = lambda r: seen.append(real_enforce(r)) or seen[-1]
    assert custody.vault.get(request).data == SECRET
    with Ledger.open(database_url, create=False) as other:  # another reader of the same store
        record = decode_record(other.entry(seen[0].ledger_index))
    assert record["kind"] == "decision" and record["decision"] == "allow"
    assert record["action"] == "read" and record["data_class"] == "messages"


requests = st.builds(
    lambda role, who, where, action, data_class, owner, purpose: AccessRequest(
        Principal(who, role, where),
        action,
        Resource(f"r-{who}", data_class, DOMESTIC, owner=owner),
        purpose,
    ),
    st.sampled_from(Role),
    st.sampled_from(["u1", "u2", "svc"]),
    st.sampled_from([DOMESTIC, "XX"]),
    st.sampled_from(Action),
    st.sampled_from(DataClass),
    st.sampled_from([None, "u1", "u2"]),
    st.sampled_from(["self", "ingest", "feed_serving", "training", "metrics_release", "x"]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(requests, min_size=1, max_size=12), batched=st.booleans())
def test_every_decision_allow_and_deny_is_in_the_ledger(custody, batch, batched) -> None:
    size = custody.ledger.size()
    point = custody.policy
    decisions = point.decide_many(batch) if batched else [point.decide(r) for r in batch]
    records = _records(custody.ledger)[size:]
    assert len(records) == len(decisions)
    for decision, request in zip(decisions, batch, strict=True):
        record = decode_record(custody.ledger.entry(decision.ledger_index))
        assert record["decision"] == ("allow" if decision.allowed else "deny")
        assert record["action"] == request.action.value
        assert record["purpose"] == request.purpose
        assert record["data_class"] == request.resource.data_class.value
        assert record["jurisdiction"] == request.principal.jurisdiction
        assert record["policy"] == decision.policy_hash
        assert request.resource.id not in str(record)  # keyed hash, never the raw id


# -- invariant 2: the licensor can obtain no personal data through any route -----------------


def _approved_grant_for_the_licensor(custody: Custody, **scope) -> str:
    grant = custody.policy.grants.request(
        grantee=LICENSOR_ABROAD, actions=list(Action), data_classes=PERSONAL,
        purpose="metrics_release", expires_in=3600, requested_by=REQUESTER,
        allow_transfer=True, **scope,
    )  # fmt: skip
    for custodian in CUSTODIANS:
        custody.policy.grants.approve(grant.id, custodian)
    return grant.id


def test_the_licensor_is_denied_every_personal_class_even_under_an_approved_grant(custody) -> None:
    grant_id = _approved_grant_for_the_licensor(custody)
    size = custody.ledger.size()
    asked = 0
    for who, action, data_class, purpose, grant in itertools.product(
        (LICENSOR, LICENSOR_ABROAD), Action, PERSONAL,
        ("metrics_release", "training", "self", "ingest"), (None, grant_id),
    ):  # fmt: skip
        resource = Resource("r1", data_class, DOMESTIC, owner=ALICE)
        decision = custody.policy.decide(AccessRequest(who, action, resource, purpose, "", grant))
        assert not decision.allowed, (who, action, data_class, purpose, grant)
        asked += 1
    assert len(_records(custody.ledger)) - size == asked  # every deny is logged


def _licensor_attempts(vault: Vault, who: Principal, grant: str | None) -> list:
    """Every vault route, asked by the licensor for Alice's data."""
    ask = {"owner": ALICE, "residency": DOMESTIC, "grant_id": grant}
    return [
        lambda: vault.get(record_request(
            who, Action.READ, record_id="m1", data_class=DataClass.MESSAGES,
            purpose="metrics_release", **ask)),
        lambda: vault.records_of(user_request(
            who, Action.READ, data_class=DataClass.MESSAGES, purpose="metrics_release", **ask)),
        lambda: vault.export(user_request(who, Action.EXPORT, purpose="metrics_release", **ask)),
        lambda: vault.erase(user_request(who, Action.ERASE, purpose="metrics_release", **ask)),
        lambda: vault.put(record_request(
            who, Action.WRITE, record_id="m9", data_class=DataClass.MESSAGES, purpose="ingest",
            **ask), b"planted"),
    ]  # fmt: skip


def test_no_vault_route_gives_the_licensor_anything(custody) -> None:
    _store(custody, "m1", DataClass.MESSAGES, SECRET)
    grant_id = _approved_grant_for_the_licensor(custody, owner=ALICE)
    vault = custody.vault
    for who, grant in itertools.product((LICENSOR, LICENSOR_ABROAD), (None, grant_id)):
        for attempt in _licensor_attempts(vault, who, grant):
            with pytest.raises(AccessDenied) as denied:
                attempt()
            assert SECRET.decode() not in str(denied.value)
    alice = Principal(ALICE, Role.USER, DOMESTIC)
    bundle = vault.export(
        user_request(alice, Action.EXPORT, owner=ALICE, residency=DOMESTIC, purpose="self")
    )
    assert [r["id"] for r in bundle["records"]] == ["m1"]  # nothing planted, nothing erased


def test_the_training_stream_is_not_a_licensor_route(custody) -> None:
    for who, action in itertools.product((LICENSOR, LICENSOR_ABROAD), (Action.READ, Action.TRAIN)):
        resource = Resource("stream", DataClass.PSEUDONYMOUS_EVENTS, DOMESTIC)
        assert not custody.policy.decide(AccessRequest(who, action, resource, "training")).allowed


# -- invariant 3: changing, dropping or reordering an entry is detected from a checkpoint -----


def _tamper(url: str, sql: str, **params) -> None:
    from trustfeed.storage import open_engine

    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)
    engine.dispose()


def test_flipping_a_logged_deny_to_allow_is_detected(custody, database_url: str) -> None:
    _store(custody, "m1", DataClass.MESSAGES, SECRET)
    denied = custody.policy.decide(
        AccessRequest(LICENSOR, Action.READ, Resource("m1", DataClass.MESSAGES, DOMESTIC), "x")
    )
    _store(custody, "m2", DataClass.MESSAGES, b"later")
    custody.ledger.checkpoint()
    assert audit_store(database_url, [VERIFIER]).entries == custody.ledger.size()
    forged = custody.ledger.entry(denied.ledger_index).replace(b'"deny"', b'"allow"')
    _tamper(database_url, "UPDATE ledger_entries SET data = :d WHERE idx = :i",
            d=forged, i=denied.ledger_index)  # fmt: skip
    with pytest.raises(VerificationError) as failure:
        audit_store(database_url, [VERIFIER])
    assert failure.value.index == denied.ledger_index


# -- invariant 7: erasure makes the data unreadable; the ledger still verifies ---------------


def test_erasure_shreds_the_user_and_the_ledger_still_verifies(custody, database_url: str) -> None:
    _store(custody, "m1", DataClass.MESSAGES, SECRET)
    _store(custody, "loc", DataClass.PRECISE_LOCATION, b"52.52,13.40")
    custody.ledger.checkpoint()
    trusted = custody.ledger.latest_checkpoint()
    alice = Principal(ALICE, Role.USER, DOMESTIC)
    receipt = custody.vault.erase(
        user_request(alice, Action.ERASE, owner=ALICE, residency=DOMESTIC, purpose="erasure")
    )
    assert receipt.records == 2
    erasure = decode_record(custody.ledger.entry(receipt.ledger_index))
    assert erasure["kind"] == "erasure" and ALICE not in str(erasure)
    with pytest.raises(ErasedError):
        custody.vault.export(
            user_request(alice, Action.EXPORT, owner=ALICE, residency=DOMESTIC, purpose="self")
        )
    from trustfeed.storage import open_engine

    engine = open_engine(database_url)
    with engine.connect() as conn:  # the key is gone and no ciphertext is left to attack
        tables = sa.inspect(conn).get_table_names()
        keys = conn.execute(sa.text("SELECT count(*) FROM vault_data_keys")).scalar_one()
        stored = conn.execute(sa.text("SELECT count(*) FROM vault_records")).scalar_one()
    engine.dispose()
    assert "vault_data_keys" in tables and keys == 0 and stored == 0
    custody.ledger.checkpoint()
    report = audit_store(database_url, [VERIFIER], trusted_checkpoint=trusted)
    assert report.entries == custody.ledger.size() and report.uncovered == 0


def test_erasure_removes_the_user_from_the_model_through_their_pseudonym(custody) -> None:
    import numpy as np
    import pandas as pd

    from trustfeed.recommend import Recommender

    rng = np.random.default_rng(3)
    users = np.array([ALICE, *[f"user-{i}" for i in range(40)]])
    raw = pd.DataFrame(
        {
            "user_id": rng.choice(users, 3_000),
            "item_id": rng.integers(0, 120, 3_000).astype(str),
            "timestamp": np.arange(3_000, dtype=float),
            "event": "like",
            "precise_location": "52.52,13.40",  # restricted: must not reach the trainer
        }
    )
    batch = custody.pseudonyms.events(raw, residency=DOMESTIC)
    assert "precise_location" not in batch.frame and ALICE not in batch.frame.to_csv()
    model = Recommender(seed=1).fit(batch.frame)
    alice = custody.pseudonyms.user(ALICE)
    assert alice in model.users
    _store(custody, "m1", DataClass.MESSAGES, SECRET)
    subject = Principal(ALICE, Role.USER, DOMESTIC)
    custody.vault.erase(
        user_request(subject, Action.ERASE, owner=ALICE, residency=DOMESTIC, purpose="erasure")
    )
    assert model.forget_users([alice]) == 1  # what the service does on an erasure record
    assert alice not in model.users
    stranger = custody.pseudonyms.user("never-seen")
    np.testing.assert_array_equal(model.recommend([alice], k=10), model.recommend([stranger], k=10))

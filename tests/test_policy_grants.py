"""Just-in-time grants: two distinct custodian approvals, purpose, scope, expiry,
revoke; their ledger records; and how the policy point uses them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from trustfeed.custody import (
    AccessRequest,
    Action,
    DataClass,
    KeyedHasher,
    Principal,
    Resource,
    Role,
)
from trustfeed.custody import MemorySink as BaseMemorySink
from trustfeed.custody.policy import (
    GrantError,
    GrantStatus,
    GrantStore,
    PolicyPoint,
)
from trustfeed.storage import open_engine

DOMESTIC = "US"
OPERATOR = Principal("op-analyst", Role.OPERATOR, DOMESTIC)
ALICE = Principal("alice", Role.CUSTODIAN, DOMESTIC)
BOB = Principal("bob", Role.CUSTODIAN, DOMESTIC)
CAROL = Principal("carol", Role.CUSTODIAN, DOMESTIC)


class MemorySink(BaseMemorySink):
    """The library's in-memory sink, with this file's helpers."""

    def kinds(self) -> list[str]:
        return [json.loads(e)["kind"] for e in self.entries]


class Clock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


def request_grant(store: GrantStore, **overrides) -> str:
    args = {
        "grantee": OPERATOR,
        "actions": [Action.READ],
        "data_classes": [DataClass.WATCH_HISTORY],
        "purpose": "incident_investigation",
        "expires_in": 3600.0,
        "requested_by": OPERATOR,
        "justification": "ticket 42",
    } | overrides
    return store.request(**args).id


def test_grant_lifecycle_on_both_backends(engine: sa.Engine) -> None:
    clock, sink = Clock(), MemorySink()
    store = GrantStore(engine=engine, sink=sink, clock=clock)
    grant_id = request_grant(store, owner="user-9", allow_transfer=True)
    assert store.get(grant_id).status(clock()) is GrantStatus.PENDING
    store.approve(grant_id, ALICE)
    assert store.get(grant_id).status(clock()) is GrantStatus.PENDING
    grant = store.approve(grant_id, BOB)
    assert grant.status(clock()) is GrantStatus.ACTIVE
    assert set(grant.approvals) == {"alice", "bob"}
    assert grant.owner == "user-9" and grant.allow_transfer
    assert grant.actions == {Action.READ} and grant.data_classes == {DataClass.WATCH_HISTORY}
    # State survives a new store on the same database.
    again = GrantStore(engine=engine, sink=sink, clock=clock).get(grant_id)
    assert again == grant
    revoked = store.revoke(grant_id, CAROL, reason="done")
    assert revoked.status(clock()) is GrantStatus.REVOKED
    assert [g.id for g in store.all()] == [grant_id]
    assert sink.kinds() == ["grant_request", "grant_approve", "grant_approve", "grant_revoke"]
    assert b"user-9" not in b"".join(sink.entries)


def test_approval_rules(engine: sa.Engine) -> None:
    clock = Clock()
    store = GrantStore(engine=engine, sink=MemorySink(), clock=clock)
    grant_id = request_grant(store)
    with pytest.raises(GrantError, match="only custodians approve"):
        store.approve(grant_id, Principal("op-2", Role.OPERATOR, DOMESTIC))
    with pytest.raises(GrantError, match="themselves"):
        store.approve(request_grant(store, grantee=ALICE), ALICE)
    store.approve(grant_id, ALICE)
    with pytest.raises(GrantError, match="already approved"):
        store.approve(grant_id, ALICE)
    store.approve(grant_id, BOB)
    with pytest.raises(GrantError, match="already approved"):
        store.approve(grant_id, CAROL)
    with pytest.raises(GrantError, match="unknown grant"):
        store.approve("g-nope", ALICE)


def test_expired_and_revoked_grants_cannot_be_approved() -> None:
    clock = Clock()
    engine = open_engine("sqlite://")
    try:
        store = GrantStore(engine=engine, sink=MemorySink(), clock=clock)
        expiring = request_grant(store, expires_in=10.0)
        revoked = request_grant(store)
        store.revoke(revoked, ALICE)
        clock.now += 10.0
        with pytest.raises(GrantError, match="expired"):
            store.approve(expiring, ALICE)
        with pytest.raises(GrantError, match="revoked"):
            store.approve(revoked, ALICE)
        with pytest.raises(GrantError, match="already revoked"):
            store.revoke(revoked, ALICE)
        with pytest.raises(GrantError, match="only a custodian or the requester"):
            store.revoke(expiring, Principal("x", Role.USER, DOMESTIC))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"actions": []}, "at least one action"),
        ({"data_classes": []}, "at least one data class"),
        ({"purpose": "  "}, "purpose"),
        ({"expires_in": 0.0}, "expires_in"),
        ({"expires_in": 10 * 365 * 86400.0}, "expires_in"),
    ],
)
def test_bad_scope_is_refused_and_not_logged(overrides, message) -> None:
    engine = open_engine("sqlite://")
    sink = MemorySink()
    try:
        with pytest.raises(GrantError, match=message):
            request_grant(GrantStore(engine=engine, sink=sink), **overrides)
        assert sink.entries == []
    finally:
        engine.dispose()


@pytest.fixture
def point() -> Iterator[tuple[PolicyPoint, Clock]]:
    clock = Clock()
    p = PolicyPoint(
        url="sqlite://",
        sink=MemorySink(),
        hasher=KeyedHasher.generate(),
        domestic=DOMESTIC,
        clock=clock,
    )
    yield p, clock
    p.close()


def read(grant_id: str | None, *, purpose: str = "incident_investigation", **kw) -> AccessRequest:
    principal = kw.pop("principal", OPERATOR)
    return AccessRequest(
        principal=principal,
        action=kw.pop("action", Action.READ),
        resource=Resource(
            "r-1",
            kw.pop("data_class", DataClass.WATCH_HISTORY),
            DOMESTIC,
            owner=kw.pop("owner", "u1"),
        ),
        purpose=purpose,
        grant_id=grant_id,
    )


def active_grant(p: PolicyPoint, **overrides) -> str:
    grant_id = request_grant(p.grants, **overrides)
    p.grants.approve(grant_id, ALICE)
    p.grants.approve(grant_id, BOB)
    return grant_id


def test_grant_needs_two_approvals_to_work(point) -> None:
    p, _ = point
    grant_id = request_grant(p.grants)
    assert not p.decide(read(grant_id)).allowed
    p.grants.approve(grant_id, ALICE)
    assert not p.decide(read(grant_id)).allowed
    p.grants.approve(grant_id, BOB)
    decision = p.decide(read(grant_id))
    assert decision.allowed and decision.reasons == ("grant",)


def test_grant_is_used_only_when_named_with_its_purpose_and_scope(point) -> None:
    p, _ = point
    grant_id = active_grant(p, owner="u1")
    assert p.decide(read(grant_id)).allowed
    assert not p.decide(read(None)).allowed
    assert not p.decide(read("g-unknown")).allowed
    assert not p.decide(read(grant_id, purpose="curiosity")).allowed
    assert not p.decide(read(grant_id, action=Action.EXPORT)).allowed
    assert not p.decide(read(grant_id, data_class=DataClass.MESSAGES)).allowed
    assert not p.decide(read(grant_id, owner="u2")).allowed
    other = Principal("op-other", Role.OPERATOR, DOMESTIC)
    assert not p.decide(read(grant_id, principal=other)).allowed


def test_grant_stops_at_expiry_and_on_revoke(point) -> None:
    p, clock = point
    grant_id = active_grant(p, expires_in=60.0)
    assert p.decide(read(grant_id)).allowed
    clock.now += 59.0
    assert p.decide(read(grant_id)).allowed
    clock.now += 1.0
    assert not p.decide(read(grant_id)).allowed
    second = active_grant(p)
    assert p.decide(read(second)).allowed
    p.grants.revoke(second, CAROL)
    assert not p.decide(read(second)).allowed


def test_revoke_by_another_process_counts_at_once(point) -> None:
    p, _ = point
    grant_id = active_grant(p)
    assert p.decide(read(grant_id)).allowed
    other = GrantStore(engine=p.grants._engine, sink=MemorySink())
    other.revoke(grant_id, CAROL)
    assert not p.decide(read(grant_id)).allowed


def test_transfer_needs_a_grant_that_allows_it(point) -> None:
    p, _ = point
    abroad = Principal("op-analyst", Role.OPERATOR, "XX")
    plain = active_grant(p)
    assert not p.decide(read(plain, principal=abroad)).allowed
    transfer = active_grant(p, allow_transfer=True)
    assert p.decide(read(transfer, principal=abroad)).allowed


def test_no_grant_reaches_the_licensor(point) -> None:
    p, _ = point
    licensor = Principal("lic", Role.LICENSOR, DOMESTIC)
    grant_id = active_grant(p, grantee=licensor, allow_transfer=True)
    decision = p.decide(read(grant_id, principal=licensor))
    assert not decision.allowed
    assert "licensor-no-personal-data" in decision.reasons


def test_decisions_and_grant_events_land_in_the_real_ledger(database_url: str) -> None:
    from trustfeed.custody.ledger import Ledger

    ledger = Ledger.open(database_url)
    try:
        with PolicyPoint(
            url=database_url, sink=ledger, hasher=KeyedHasher.generate(), domestic=DOMESTIC
        ) as p:
            grant_id = active_grant(p)
            decisions = [p.decide(read(grant_id)), *p.decide_many([read(None), read(grant_id)])]
            assert [d.allowed for d in decisions] == [True, False, True]
            kinds = [json.loads(ledger.entry(i))["kind"] for i in range(ledger.size())]
            assert (
                kinds
                == ["policy_version", "grant_request", "grant_approve", "grant_approve"]
                + ["decision"] * 3
            )
            assert [d.ledger_index for d in decisions] == [4, 5, 6]
    finally:
        ledger.close()


def test_unknown_scope_names_are_a_grant_error() -> None:
    engine = open_engine("sqlite://")
    try:
        store = GrantStore(engine=engine, sink=MemorySink())
        with pytest.raises(GrantError, match="unknown data class"):
            request_grant(store, data_classes=["dna"])
        with pytest.raises(GrantError, match="unknown action"):
            request_grant(store, actions=["steal"])
    finally:
        engine.dispose()

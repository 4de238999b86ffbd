"""The decision cache and policy slicing never change a decision.

A cached, sliced point is run side by side with an uncached, unsliced reference
point (exact ids, the full policy set on every call) over random policy sets,
random requests and random grant histories, with the clock moving so grants
expire. Grant changes go through the *reference* point's store, so the cached
point is never told: its answers must already be right without the cache drop.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustfeed.custody import (
    AccessRequest,
    Action,
    DataClass,
    KeyedHasher,
    MemorySink,
    Principal,
    Resource,
    Role,
)
from trustfeed.custody.policy import GrantError, PolicyPoint, base_policies
from trustfeed.storage import open_engine

A = "Trustfeed::Action"
FRAGMENTS = [
    "permit (principal, action, resource);",
    "permit (principal is Trustfeed::User, action, resource)"
    " when { resource has owner && resource.owner == principal };",
    "forbid (principal, action, resource)"
    " when { resource.personal && context.jurisdiction != context.domestic }"
    " unless { context.grant.transfer };",
    "permit (principal, action, resource) when { context.grant.active };",
    'permit (principal == Trustfeed::Service::"s1", action, resource);',
    "forbid (principal, action, resource)"
    ' when { resource has owner && resource.owner == Trustfeed::User::"u2" };',
    'permit (principal, action, resource == Trustfeed::Resource::"r1");',
    f'permit (principal, action in [{A}::"read", {A}::"export"], resource)'
    ' when { context.justification like "*ticket*" };',
    "forbid (principal is Trustfeed::Licensor, action, resource) when { resource.personal };",
    "permit (principal is Trustfeed::Operator, action, resource)"
    ' when { ["allowable", "pseudonymous"].contains(resource.category)'
    ' && context.purpose == "p1" };',
    f'forbid (principal, action == {A}::"train", resource)'
    " when { resource.residency != context.domestic };",
    "permit (principal, action, resource)"
    ' when { resource has owner && resource.owner != principal && context.purpose == "p2" };',
    'forbid (principal in Trustfeed::User::"u1", action, resource) when { context.grant.active };',
    "permit (principal is Trustfeed::Custodian, action, resource)"
    ' when { context.purpose like "p*" };',
]
IDS = ["u1", "u2", "s1", "c1", "c2", "x"]
CUSTODIANS = [Principal(i, Role.CUSTODIAN, "US") for i in ("c1", "c2", "u1")]


def policy_sets() -> st.SearchStrategy[str]:
    chosen = st.sets(st.integers(0, len(FRAGMENTS) - 1), max_size=6) | st.just({3, 2, 11, 1})
    with_base = st.booleans()
    return st.builds(
        lambda picks, base: (
            (base_policies() if base else "")
            + "\n".join(f'@id("f{i}")\n{FRAGMENTS[i]}' for i in sorted(picks))
        ),
        chosen,
        with_base,
    )


principals = st.builds(
    Principal, st.sampled_from(IDS), st.sampled_from(Role), st.sampled_from(["US", "XX"])
)
requests = st.builds(
    lambda p, action, rid, dc, res, owner, purpose, just, grant: (
        AccessRequest(p, action, Resource(rid, dc, res, owner=owner), purpose, just),
        grant,
    ),
    principals,
    st.sampled_from(Action),
    st.sampled_from(["r1", "r2"]),
    st.sampled_from(DataClass),
    st.sampled_from(["US", "XX"]),
    st.sampled_from([None, *IDS]),
    st.sampled_from(["p1", "p2", "metrics_release", "training"]),
    st.sampled_from(["", "ticket 7", "none"]),
    st.integers(-1, 3),  # which grant the request names (-1: none; one past the last: unknown)
)
grant_requests = st.tuples(
    st.just("request"),
    principals,
    st.sets(st.sampled_from(Action), min_size=1, max_size=3),
    st.sets(st.sampled_from(DataClass), min_size=1, max_size=4),
    st.sampled_from(["p1", "p2"]),
    st.sampled_from([5.0, 20.0, 60.0]),
    st.sampled_from([None, "u1", "u2"]),
    st.booleans(),
)
# A request built from grant k's scope, optionally off by one field: without
# these, random requests would almost never match a grant.
grant_uses = st.tuples(
    st.just("use"),
    st.integers(0, 3),
    st.sampled_from(["none", "none", "purpose", "principal", "owner", "abroad"]),
    st.sampled_from(Action),
    st.sampled_from(DataClass),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("decide"), st.lists(requests, min_size=1, max_size=8)),
        grant_requests,
        st.tuples(st.just("approve"), st.integers(0, 3), st.sampled_from(CUSTODIANS)),
        st.tuples(st.just("approve-twice"), st.integers(0, 3)),
        st.tuples(st.just("revoke"), st.integers(0, 3)),
        st.tuples(st.just("tick"), st.sampled_from([1.0, 5.0, 20.0])),
        st.tuples(st.just("activate"), policy_sets()),
        grant_uses,
        grant_uses,
        # use a grant, then let it expire or revoke it, then use it again
        st.tuples(st.just("cycle"), grant_uses, st.sampled_from(["expire", "revoke"])),
    ),
    min_size=3,
    max_size=30,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _points(policy_text: str, clock: Clock):
    engine = open_engine("sqlite://")
    common = {"engine": engine, "hasher": KeyedHasher.generate(), "domestic": "US", "clock": clock}
    cached = PolicyPoint(sink=MemorySink(), policy_text=policy_text, cache_size=64, **common)
    reference = PolicyPoint(
        sink=MemorySink(), policy_text=policy_text, cache_size=0, slice_policies=False, **common
    )
    return engine, cached, reference


def _grant_use(op: tuple, reference: PolicyPoint, grant_ids: list[str]) -> list[AccessRequest]:
    _, k, tweak, action, data_class = op
    if not grant_ids:
        return []
    grant = reference.grants.get(grant_ids[k % len(grant_ids)])
    action = action if action in grant.actions else min(grant.actions)
    data_class = data_class if data_class in grant.data_classes else min(grant.data_classes)
    who = Principal(
        grant.grantee_id if tweak != "principal" else "x",
        grant.grantee_role,
        "XX" if tweak == "abroad" else "US",
    )
    owner = grant.owner if tweak != "owner" else "u9"
    purpose = grant.purpose if tweak != "purpose" else "training"
    resource = Resource("r2", data_class, "US", owner=owner)
    return [AccessRequest(who, action, resource, purpose, "", grant.id)]


def _compare(batch: list[AccessRequest], cached: PolicyPoint, reference: PolicyPoint) -> None:
    if not batch:
        return
    expected = [reference.decide(r) for r in batch]
    got = cached.decide_many(batch) if len(batch) > 1 else [cached.decide(batch[0])]
    assert [(d.allowed, d.reasons) for d in got] == [(d.allowed, d.reasons) for d in expected], (
        batch
    )


def _batch(op: tuple, reference: PolicyPoint, grant_ids: list[str]) -> list[AccessRequest]:
    if op[0] == "use":
        return _grant_use(op, reference, grant_ids)
    return [
        AccessRequest(
            r.principal, r.action, r.resource, r.purpose, r.justification,
            None if g < 0 else ([*grant_ids, "g-unknown"][g % (len(grant_ids) + 1)]),
        )
        for r, g in op[1]
    ]  # fmt: skip


def _apply_grant_op(op: tuple, reference: PolicyPoint, grant_ids: list[str]) -> None:
    store = reference.grants
    try:
        if op[0] == "request":
            _, grantee, actions, classes, purpose, expires_in, owner, transfer = op
            grant = store.request(
                grantee=grantee, actions=actions, data_classes=classes, purpose=purpose,
                expires_in=expires_in, requested_by=grantee, owner=owner, allow_transfer=transfer,
            )  # fmt: skip
            grant_ids.append(grant.id)
        elif not grant_ids:
            return
        elif op[0] == "approve":
            store.approve(grant_ids[op[1] % len(grant_ids)], op[2])
        elif op[0] == "approve-twice":
            store.approve(grant_ids[op[1] % len(grant_ids)], CUSTODIANS[0])
            store.approve(grant_ids[op[1] % len(grant_ids)], CUSTODIANS[1])
        elif op[0] == "revoke":
            store.revoke(grant_ids[op[1] % len(grant_ids)], CUSTODIANS[0])
    except GrantError:
        pass  # refused operations are part of a random history


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy_sets(),
    st.lists(st.tuples(grant_requests, st.sampled_from([0, 1, 2, 2])), min_size=1, max_size=3),
    operations,
)
def test_cached_point_agrees_with_uncached_reference(
    policy_text: str, initial_grants: list[tuple], ops: list[tuple]
) -> None:
    clock = Clock()
    engine, cached, reference = _points(policy_text, clock)
    grant_ids: list[str] = []
    try:
        for grant_op, approvals in initial_grants:
            _apply_grant_op(grant_op, reference, grant_ids)
            for custodian in CUSTODIANS[:approvals]:
                _apply_grant_op(("approve", len(grant_ids) - 1, custodian), reference, grant_ids)
        for op in ops:
            if op[0] in ("decide", "use"):
                _compare(_batch(op, reference, grant_ids), cached, reference)
            elif op[0] == "cycle":
                _compare(_batch(op[1], reference, grant_ids), cached, reference)
                if op[2] == "expire":
                    clock.now += 100.0
                else:
                    _apply_grant_op(("revoke", op[1][1]), reference, grant_ids)
                _compare(_batch(op[1], reference, grant_ids), cached, reference)
            elif op[0] == "tick":
                clock.now += op[1]
            elif op[0] == "activate":
                custodian = CUSTODIANS[0]
                reference.activate(op[1], custodian)
                cached.activate(op[1], custodian)
            else:
                _apply_grant_op(op, reference, grant_ids)
    finally:
        engine.dispose()

"""The policy point's rules: deny by default, the licensor's hard limit, transfers,
the parties' base policies, and every decision (allow and deny) in the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from trustfeed.custody import (
    AccessDenied,
    AccessRequest,
    Action,
    DataClass,
    KeyedHasher,
    Principal,
    Resource,
    Role,
)
from trustfeed.custody import MemorySink as BaseMemorySink
from trustfeed.custody.policy import PolicyError, PolicyPoint, base_policies

DOMESTIC = "US"
PERMIT_ALL = '@id("permit-everything")\npermit (principal, action, resource);\n'
PERSONAL = [d for d in DataClass if d.personal]


class MemorySink(BaseMemorySink):
    """The library's in-memory sink, with this file's helpers."""

    def decisions(self) -> list[dict]:
        records = [json.loads(e) for e in self.entries]
        return [r for r in records if r["kind"] == "decision"]


def make_point(policy_text: str | None = None, **kwargs) -> tuple[PolicyPoint, MemorySink]:
    sink = MemorySink()
    point = PolicyPoint(
        url="sqlite://",
        sink=sink,
        hasher=KeyedHasher({1: bytes(range(32))}, current=1),
        domestic=DOMESTIC,
        policy_text=policy_text,
        **kwargs,
    )
    return point, sink


@pytest.fixture
def base() -> Iterator[tuple[PolicyPoint, MemorySink]]:
    point, sink = make_point()
    yield point, sink
    point.close()


def ask(
    point: PolicyPoint,
    role: Role,
    action: Action,
    data_class: DataClass,
    purpose: str,
    *,
    who: str = "p1",
    owner: str | None = None,
    jurisdiction: str = DOMESTIC,
    residency: str = DOMESTIC,
) -> bool:
    request = AccessRequest(
        principal=Principal(who, role, jurisdiction),
        action=action,
        resource=Resource("res-1", data_class, residency, owner=owner),
        purpose=purpose,
    )
    return point.decide(request).allowed


def test_empty_policy_set_denies_everything() -> None:
    point, sink = make_point("")
    try:
        for role in Role:
            for action in Action:
                for data_class in DataClass:
                    assert not ask(point, role, action, data_class, "anything", owner="p1")
        assert len(sink.decisions()) == len(Role) * len(Action) * len(DataClass)
    finally:
        point.close()


@pytest.mark.parametrize("data_class", PERSONAL)
def test_licensor_never_gets_personal_data_even_if_a_policy_permits_everything(
    data_class: DataClass,
) -> None:
    point, _ = make_point(base_policies() + "\n" + PERMIT_ALL)
    try:
        for action in Action:
            for purpose in ("metrics_release", "training", "anything"):
                for jurisdiction in (DOMESTIC, "XX"):
                    allowed = ask(
                        point,
                        Role.LICENSOR,
                        action,
                        data_class,
                        purpose,
                        jurisdiction=jurisdiction,
                        owner="p1",
                    )
                    assert not allowed, (action, purpose, jurisdiction)
    finally:
        point.close()


def test_hard_limits_hold_under_any_policy_set_a_custodian_activates() -> None:
    # A policy set that drops every forbid and permits everything: the hard limits still apply.
    point, _ = make_point(PERMIT_ALL)
    try:
        for data_class in PERSONAL:
            assert not ask(point, Role.LICENSOR, Action.READ, data_class, "anything", owner="p1")
            assert not ask(point, Role.OPERATOR, Action.READ, data_class, "x", jurisdiction="XX")
        assert not ask(point, Role.AUDITOR, Action.WRITE, DataClass.AGGREGATE_METRICS, "x")
        assert ask(point, Role.OPERATOR, Action.READ, DataClass.PUBLIC_VIDEO, "anything")
        weakened = base_policies().replace(
            'when { resource.personal || resource.category != "aggregate" };',
            "when { resource.personal };",
        )
        custodian = Principal("c1", Role.CUSTODIAN, DOMESTIC)
        with pytest.raises(PolicyError, match="hard limit @id\\('licensor-no-personal-data'\\)"):
            point.activate(weakened, custodian)
    finally:
        point.close()


def test_licensor_gets_aggregates_only_by_release_for_metrics_release(base) -> None:
    point, _ = base
    aggregate = DataClass.AGGREGATE_METRICS
    assert ask(
        point, Role.LICENSOR, Action.RELEASE, aggregate, "metrics_release", jurisdiction="XX"
    )
    assert not ask(point, Role.LICENSOR, Action.RELEASE, aggregate, "training")
    assert not ask(point, Role.LICENSOR, Action.READ, aggregate, "metrics_release")
    permissive, _ = make_point(base_policies() + "\n" + PERMIT_ALL)
    try:
        assert not ask(permissive, Role.LICENSOR, Action.READ, aggregate, "metrics_release")
    finally:
        permissive.close()


def test_denial_names_the_forbid(base) -> None:
    point, _ = base
    request = AccessRequest(
        Principal("lic", Role.LICENSOR, "XX"),
        Action.READ,
        Resource("r", DataClass.WATCH_HISTORY, DOMESTIC, owner="u1"),
        "metrics_release",
    )
    decision = point.decide(request)
    assert not decision.allowed
    assert "licensor-no-personal-data" in decision.reasons
    with pytest.raises(AccessDenied, match="licensor-no-personal-data"):
        point.enforce(request)


@pytest.mark.parametrize("data_class", PERSONAL)
def test_personal_data_from_abroad_is_a_transfer_and_denied(base, data_class) -> None:
    point, _ = base
    # The same requests that pass at home are refused from abroad.
    home = ask(point, Role.USER, Action.READ, data_class, "self", who="u1", owner="u1")
    abroad = ask(
        point, Role.USER, Action.READ, data_class, "self", who="u1", owner="u1", jurisdiction="XX"
    )
    assert home and not abroad


def test_aggregate_from_abroad_is_not_a_transfer(base) -> None:
    point, _ = base
    assert ask(
        point, Role.AUDITOR, Action.READ, DataClass.AGGREGATE_METRICS, "audit", jurisdiction="XX"
    )


def test_users_reach_only_their_own_data(base) -> None:
    point, _ = base
    for action in (Action.READ, Action.EXPORT, Action.ERASE):
        assert ask(point, Role.USER, action, DataClass.MESSAGES, "self", who="u1", owner="u1")
        assert not ask(point, Role.USER, action, DataClass.MESSAGES, "self", who="u1", owner="u2")
        assert not ask(point, Role.USER, action, DataClass.MESSAGES, "self", who="u1")
    assert not ask(point, Role.USER, Action.WRITE, DataClass.MESSAGES, "self", who="u1", owner="u1")
    # Another party with the same id is not the owner.
    assert not ask(
        point, Role.OPERATOR, Action.READ, DataClass.MESSAGES, "self", who="u1", owner="u1"
    )


def test_operator_serves_and_ingests_but_reading_restricted_needs_a_grant(base) -> None:
    point, _ = base
    for data_class in (DataClass.PUBLIC_VIDEO, DataClass.PSEUDONYMOUS_EVENTS):
        assert ask(point, Role.OPERATOR, Action.READ, data_class, "feed_serving")
        assert ask(point, Role.OPERATOR, Action.WRITE, data_class, "ingest")
        assert not ask(point, Role.OPERATOR, Action.READ, data_class, "marketing")
        assert not ask(point, Role.OPERATOR, Action.EXPORT, data_class, "feed_serving")
    for data_class in DataClass:
        if data_class.category == "restricted":
            # The app collects watch history (ingest writes it); reading it back does not follow.
            assert ask(point, Role.OPERATOR, Action.WRITE, data_class, "ingest")
            assert not ask(point, Role.OPERATOR, Action.WRITE, data_class, "marketing")
            for purpose in ("feed_serving", "ingest", "moderation"):
                assert not ask(point, Role.OPERATOR, Action.READ, data_class, purpose)


def test_custodian_trains_on_domestic_pseudonymous_data_and_approves(base) -> None:
    point, _ = base
    events = DataClass.PSEUDONYMOUS_EVENTS
    assert ask(point, Role.CUSTODIAN, Action.TRAIN, events, "training")
    assert not ask(point, Role.CUSTODIAN, Action.TRAIN, events, "training", residency="XX")
    assert not ask(point, Role.CUSTODIAN, Action.TRAIN, DataClass.WATCH_HISTORY, "training")
    assert ask(point, Role.CUSTODIAN, Action.APPROVE, DataClass.AGGREGATE_METRICS, "package_review")


def test_auditor_reads_aggregates_only_and_writes_nothing(base) -> None:
    point, _ = base
    assert ask(point, Role.AUDITOR, Action.READ, DataClass.AGGREGATE_METRICS, "audit")
    for data_class in PERSONAL:
        assert not ask(point, Role.AUDITOR, Action.READ, data_class, "audit")
    for action in Action:
        if action is not Action.READ:
            assert not ask(point, Role.AUDITOR, action, DataClass.AGGREGATE_METRICS, "audit")


def test_moderator_reads_public_videos_for_moderation_only(base) -> None:
    point, _ = base
    assert ask(point, Role.MODERATOR, Action.READ, DataClass.PUBLIC_VIDEO, "moderation")
    assert not ask(point, Role.MODERATOR, Action.READ, DataClass.PUBLIC_VIDEO, "curiosity")
    assert not ask(point, Role.MODERATOR, Action.READ, DataClass.MESSAGES, "moderation")


def test_every_decision_is_logged_without_raw_ids(base) -> None:
    point, sink = base
    allow = AccessRequest(
        Principal("user-7", Role.USER, DOMESTIC),
        Action.READ,
        Resource("video-secret-123", DataClass.PRIVATE_VIDEO, DOMESTIC, owner="user-7"),
        "self",
        justification="my own video",
    )
    deny = AccessRequest(
        Principal("op-1", Role.OPERATOR, DOMESTIC),
        Action.READ,
        Resource("video-secret-456", DataClass.PRIVATE_VIDEO, DOMESTIC, owner="owner-xyz"),
        "feed_serving",
    )
    first, second = point.decide(allow), point.decide(deny)
    batch = point.decide_many([allow, deny])
    assert [d.allowed for d in (first, second, *batch)] == [True, False, True, False]
    records = sink.decisions()
    assert [r["decision"] for r in records] == ["allow", "deny", "allow", "deny"]
    assert [d.ledger_index for d in (first, second, *batch)] == [
        i for i, e in enumerate(sink.entries) if b'"kind":"decision"' in e
    ]
    raw = b"".join(sink.entries)
    for secret in (b"video-secret-123", b"video-secret-456", b"owner-xyz", b"user-7"):
        assert secret not in raw
    hasher = KeyedHasher({1: bytes(range(32))}, current=1)
    record = records[0]
    assert hasher.matches("video-secret-123", record["resource"])
    assert hasher.matches("user-7", record["owner"])
    assert hasher.matches("user-7", record["principal"]) and record["role"] == "user"
    assert records[1]["principal"] == "op-1"  # staff stay named: accountability
    assert record["reasons"] == ["user-own-data"]
    assert record["policy"] == point.policy_hash == first.policy_hash
    assert record["justification"] == "my own video" and record["jurisdiction"] == DOMESTIC
    assert {"action", "purpose", "data_class", "grant", "at"} <= record.keys()


def test_batch_equals_single_decisions(base) -> None:
    point, _ = base
    requests = [
        AccessRequest(
            Principal(f"u{i % 3}", role, "US" if i % 2 else "XX"),
            action,
            Resource(f"r{i}", data_class, DOMESTIC, owner=f"u{i % 4}"),
            "self",
        )
        for i, (role, action, data_class) in enumerate(
            (r, a, d) for r in Role for a in Action for d in list(DataClass)[::3]
        )
    ]
    singles = [point.decide(r) for r in requests]
    batch = point.decide_many(requests)
    assert [(d.allowed, d.reasons) for d in singles] == [(d.allowed, d.reasons) for d in batch]


class BrokenSink(MemorySink):
    def append(self, entry: bytes) -> int:
        raise OSError("disk full")

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        raise OSError("disk full")


def test_an_unrecordable_decision_is_not_returned() -> None:
    sink = BrokenSink()
    point, _ = make_point()
    point._sink = sink  # the decision path only; the point opened fine
    request = AccessRequest(
        Principal("u1", Role.USER, DOMESTIC),
        Action.READ,
        Resource("r", DataClass.MESSAGES, DOMESTIC, owner="u1"),
        "self",
    )
    try:
        with pytest.raises(PolicyError, match="could not be recorded"):
            point.decide(request)
    finally:
        point.close()


def test_a_malformed_request_is_a_logged_deny(base) -> None:
    point, sink = base
    request = AccessRequest(
        Principal("u1", "superuser", DOMESTIC),  # type: ignore[arg-type]
        Action.READ,
        Resource("r", DataClass.MESSAGES, DOMESTIC, owner="u1"),
        "self",
    )
    decision = point.decide(request)
    assert not decision.allowed
    assert decision.reasons[0].startswith("evaluation-error")
    assert sink.decisions()[-1]["decision"] == "deny"

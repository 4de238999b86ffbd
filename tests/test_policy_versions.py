"""Policy versions: validation at load, custodian-only activation, the ledger
record, atomic swap, and reload of the active version at open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
from trustfeed.custody.policy import (
    InvalidPolicy,
    PolicyError,
    PolicyPoint,
    base_policies,
    compile_policies,
    policy_hash,
)

DOMESTIC = "US"
CUSTODIAN = Principal("alice", Role.CUSTODIAN, DOMESTIC)
MODERATE = AccessRequest(
    Principal("mod-1", Role.MODERATOR, DOMESTIC),
    Action.READ,
    Resource("v1", DataClass.PUBLIC_VIDEO, DOMESTIC, owner="u1"),
    "moderation",
)


def open_point(url: str, sink: MemorySink, policy_text: str | None = None) -> PolicyPoint:
    return PolicyPoint(
        url=url,
        sink=sink,
        hasher=KeyedHasher.generate(),
        domestic=DOMESTIC,
        policy_text=policy_text,
    )


def test_shipped_policies_validate_and_every_policy_has_an_id() -> None:
    compiled = compile_policies(base_policies())
    assert compiled.size == len(set(compiled.ids.values())) > 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('@id("x") permit (principal, action, resource', "does not parse"),
        (
            '@id("x") permit (principal, action, resource) when { resource.colour == "red" };',
            "colour",
        ),
        ('@id("x") permit (principal, action, resource) when { context.purpose == 3 };', "schema"),
        ("permit (principal, action, resource);", "no @id"),
        (
            '@id("x") permit (principal, action, resource);\n'
            '@id("x") forbid (principal, action, resource);',
            "share",
        ),
        ('@id("x") permit (principal is Trustfeed::Robot, action, resource);', "schema"),
        ('@id("t") permit (principal == ?principal, action, resource);', "templates"),
    ],
)
def test_invalid_policy_sets_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidPolicy, match=message):
        compile_policies(text)


def test_activation_swaps_records_and_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    sink = MemorySink()
    point = open_point(url, sink)
    try:
        assert point.decide(MODERATE).allowed
        assert point.version.actor_id == "bootstrap"
        stricter = base_policies() + (
            '\n@id("no-moderation")\n'
            "forbid (principal is Trustfeed::Moderator, action, resource);\n"
        )
        version = point.activate(stricter, CUSTODIAN)
        decision = point.decide(MODERATE)
        assert not decision.allowed and decision.reasons == ("no-moderation",)
        assert decision.policy_hash == version.hash == policy_hash(stricter)
        record = json.loads(sink.entries[version.ledger_index])
        assert record["kind"] == "policy_version" and record["actor"] == "alice"
        assert record["hash"] == version.hash and record["text"] == stricter
    finally:
        point.close()
    reopened = open_point(url, MemorySink())
    try:
        assert reopened.policy_hash == version.hash
        assert not reopened.decide(MODERATE).allowed
        assert [v.actor_id for v in reopened.versions.history()] == ["bootstrap", "alice"]
    finally:
        reopened.close()


def test_only_custodians_activate_and_invalid_text_changes_nothing() -> None:
    sink = MemorySink()
    point = open_point("sqlite://", sink)
    try:
        before, entries = point.policy_hash, len(sink.entries)
        with pytest.raises(PolicyError, match="only custodians"):
            point.activate("", Principal("op", Role.OPERATOR, DOMESTIC))
        with pytest.raises(InvalidPolicy):
            point.activate('@id("x") permit (principal, action, resource) when { 1 };', CUSTODIAN)
        assert point.policy_hash == before and len(sink.entries) == entries
        assert point.decide(MODERATE).allowed
    finally:
        point.close()


def test_activation_drops_the_decision_cache() -> None:
    point = open_point("sqlite://", MemorySink(), policy_text=base_policies())
    try:
        assert point.decide(MODERATE).allowed  # now cached
        point.activate("", CUSTODIAN)
        assert not point.decide(MODERATE).allowed
    finally:
        point.close()


def test_refresh_picks_up_an_activation_made_elsewhere(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first, second = open_point(url, MemorySink()), open_point(url, MemorySink())
    try:
        assert first.decide(MODERATE).allowed
        second.activate("", CUSTODIAN)
        assert first.refresh() and not first.refresh()
        assert not first.decide(MODERATE).allowed
    finally:
        first.close()
        second.close()

"""The HTTP API end to end over the embedded default: every party's routes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._service_world import World, open_world

from trustfeed.custody import decode_record


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    """The platform on each storage backend (SQLite files; one PostgreSQL schema)."""
    w = open_world(tmp_path, store_url=database_url)
    yield w
    w.platform.close()


def events(user: str, items: list[int], start: float = 1_700_000_000.0, prefix: str = "k") -> list:
    return [
        {"idempotency_key": f"{prefix}-{user}-{i}-{n}", "user_id": user, "item_id": i,
         "event": "view", "timestamp": start + n, "watch_ms": 15000, "duration_ms": 15000}
        for n, i in enumerate(items)
    ]  # fmt: skip


def ingest(world: World, batch: list) -> dict:
    response = world.client.post(
        "/v1/events", json={"events": batch}, headers=world.headers("operator")
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_upload_ingest_feed_and_reasons(world: World) -> None:
    for item in range(1, 13):
        assert world.upload(item, topic="cats" if item % 2 else "dogs")["status"] == "eligible"
    for n, user in enumerate(["u1", "u2", "u3", "alice"]):
        ingest(world, events(user, [1 + (n + j) % 12 for j in range(6)]))
    world.platform.drain()
    response = world.client.get("/v1/users/alice/feed?k=5", headers=world.headers("alice"))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["personalised"] is True and 1 <= len(page["items"]) <= 5
    assert all(entry["reasons"] for entry in page["items"])
    first = page["items"][0]["item_id"]
    why = world.client.get(f"/v1/users/alice/feed/{first}/why", headers=world.headers("alice"))
    assert why.status_code == 200 and why.json()["servable"] is True


def test_duplicate_events_are_accepted_once(world: World) -> None:
    world.upload(1)
    batch = events("alice", [1, 1, 1])
    assert ingest(world, batch)["accepted"] == 3
    again = ingest(world, batch)
    assert again == {"accepted": 0, "duplicates": 3, "last_offset": again["last_offset"]}
    world.platform.drain()
    assert world.platform.trainer.applied == 3


def test_no_token_is_401_and_wrong_principal_is_403_with_a_ledger_deny(world: World) -> None:
    assert world.client.get("/v1/users/alice/feed").status_code == 401
    bad = {"Authorization": "Bearer tf_0000000000000000_" + "x" * 43}
    assert world.client.get("/v1/users/alice/feed", headers=bad).status_code == 401
    size = world.platform.custody.ledger.size()
    response = world.client.get("/v1/users/alice/feed", headers=world.headers("bob"))
    assert response.status_code == 403
    entries = world.platform.custody.ledger.entries(size, world.platform.custody.ledger.size())
    decisions = [decode_record(e) for e in entries]
    assert any(
        d["decision"] == "deny" and d["data_class"] == "pseudonymous_events" for d in decisions
    )


def test_licensor_gets_no_personal_data(world: World) -> None:
    lic = world.headers("licensor")
    for path in ("/v1/users/alice/feed", "/v1/users/alice/export"):
        assert world.client.get(path, headers=lic).status_code == 403
    assert (
        world.client.post(
            "/v1/events", json={"events": events("alice", [1])}, headers=lic
        ).status_code
        == 403
    )
    assert world.client.get("/v1/audit/entries", headers=lic).status_code == 403


def test_bad_input_is_4xx_and_changes_nothing(world: World) -> None:
    op = world.headers("operator")
    before = world.platform.log.last_offset()
    bad_batches = [
        {"events": []},
        {"events": [{"user_id": "x"}]},
        {"events": [events("alice", [1])[0] | {"event": "explode"}]},
        {"events": [events("alice", [1])[0] | {"timestamp": -1}]},
        {"nope": 1},
    ]
    for body in bad_batches:
        response = world.client.post("/v1/events", json=body, headers=op)
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["detail"]
    assert world.platform.log.last_offset() == before
    assert (
        world.client.get("/v1/users/alice/feed?k=0", headers=world.headers("alice")).status_code
        == 422
    )


def test_non_personalised_feed_setting(world: World) -> None:
    for item in range(1, 8):
        world.upload(item)
    ingest(world, events("u1", [1, 2, 3]) + events("alice", [4, 5]))
    world.platform.drain()
    alice = world.headers("alice")
    assert (
        world.client.put(
            "/v1/users/alice/settings", json={"personalised": False}, headers=alice
        ).status_code
        == 200
    )
    page = world.client.get("/v1/users/alice/feed", headers=alice).json()
    assert page["personalised"] is False
    assert all(
        r["source"] in ("trending", "popular", "fresh") for e in page["items"] for r in e["reasons"]
    )


def test_export_and_erasure(world: World) -> None:
    world.upload(1)
    ingest(world, events("alice", [1, 1]))
    world.platform.drain()
    alice = world.headers("alice")
    bundle = world.client.get("/v1/users/alice/export", headers=alice)
    assert bundle.status_code == 200 and bundle.json()["records"], bundle.text
    erased = world.client.post(
        "/v1/users/alice/erase", json={"justification": "GDPR Art. 17"}, headers=alice
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["removed_from_model"] is True and erased.json()["tokens_revoked"] >= 1
    assert world.client.get("/v1/users/alice/feed", headers=alice).status_code == 401


def test_review_decision_and_appeal_overturn(world: World) -> None:
    platform = world.platform
    world.upload(5, creator="alice")
    job_id = platform.review.enqueue(5, reason="user report", detected_by=_actor())
    mod, mod2 = world.headers("moderator"), world.headers("moderator2")
    claimed = world.client.post(f"/v1/moderation/jobs/{job_id}/claim", headers=mod)
    assert claimed.status_code == 200 and claimed.json()["media"][0]["blurred"] is True
    policies = world.client.get("/v1/moderation/policies", headers=mod).json()
    restricting = next(p["id"] for p in policies if p["id"] != "no-violation")
    decided = world.client.post(
        f"/v1/moderation/jobs/{job_id}/decision",
        json={"action": "removed", "policy_id": restricting}, headers=mod,
    )  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert world.client.get("/v1/items/5", headers=mod).json()["status"] == "removed"
    appeal = world.client.post(
        "/v1/appeals",
        json={"item_id": 5, "statement": "it is fine"},
        headers=world.headers("alice"),
    )
    assert appeal.status_code == 201, appeal.text
    appeal_id = appeal.json()["id"]
    assert (
        world.client.post(f"/v1/moderation/appeals/{appeal_id}/assign", headers=mod).status_code
        == 409
    )
    resolved = world.client.post(
        f"/v1/moderation/appeals/{appeal_id}/resolve", json={"outcome": "overturned"}, headers=mod2
    )
    assert resolved.status_code == 200, resolved.text
    assert world.client.get("/v1/items/5", headers=mod).json()["status"] == "eligible"


def _actor():
    from trustfeed.moderation import Actor

    return Actor("rule", "user-report")


def test_custodian_grants_policy_and_tokens(world: World) -> None:
    cust = world.headers("custodian")
    grant = world.client.post("/v1/custodian/grants", headers=cust, json={
        "grantee": "analyst-1", "grantee_role": "operator", "grantee_jurisdiction": "US",
        "actions": ["read"], "data_classes": ["watch_history"], "purpose": "fraud_review",
        "expires_in": 3600, "justification": "ticket 42",
    })  # fmt: skip
    assert grant.status_code == 201, grant.text
    gid = grant.json()["id"]
    for who in ("custodian2", "custodian3"):
        approved = world.client.post(
            f"/v1/custodian/grants/{gid}/approve", headers=world.headers(who)
        )
        assert approved.status_code == 200, approved.text
    assert world.client.get("/v1/custodian/grants", headers=cust).json()[0]["status"] == "active"
    policy = world.client.get("/v1/custodian/policy", headers=cust).json()
    assert policy["active"]["hash"]
    bad = world.client.post(
        "/v1/custodian/policy", json={"text": "permit (principal"}, headers=cust
    )
    assert bad.status_code == 400
    issued = world.client.post(
        "/v1/custodian/tokens",
        headers=cust,
        json={"principal": "carol", "role": "user", "jurisdiction": "US", "label": "carol's phone"},
    )
    assert issued.status_code == 201
    token = issued.json()["token"]
    carol = {"Authorization": f"Bearer {token}"}
    assert world.client.get("/v1/users/carol/feed", headers=carol).status_code == 200
    world.client.post(f"/v1/custodian/tokens/{issued.json()['id']}/revoke", headers=cust)
    assert world.client.get("/v1/users/carol/feed", headers=carol).status_code == 401
    assert (
        world.client.get("/v1/custodian/tokens", headers=world.headers("operator")).status_code
        == 403
    )


def test_auditor_verifies_a_proof_against_the_checkpoint(world: World) -> None:
    from trustfeed.custody import verify_consistency, verify_inclusion

    world.upload(1)
    world.client.post("/v1/audit/checkpoint", headers=world.headers("custodian"))
    aud = world.headers("auditor")
    note = world.client.get("/v1/audit/checkpoint", headers=aud)
    assert note.status_code == 200 and note.text.startswith("test.trustfeed/ledger\n")
    size = int(note.text.splitlines()[1])
    signed_root = base64.b64decode(note.text.splitlines()[2])
    root = world.client.get("/v1/audit/size", headers=aud).json()
    entries = world.client.get("/v1/audit/entries?start=0&limit=3", headers=aud).json()["entries"]
    proof = world.client.get(f"/v1/audit/proofs/inclusion?index=2&size={size}", headers=aud).json()
    assert verify_inclusion(
        bytes.fromhex(entries[2]["hex"]), 2, size,
        [bytes.fromhex(h) for h in proof["proof"]], signed_root,
    )  # fmt: skip
    cons = world.client.get(f"/v1/audit/proofs/consistency?old=2&new={size}", headers=aud).json()
    assert verify_consistency(
        2, size, _root_at(world, 2), signed_root, [bytes.fromhex(h) for h in cons["proof"]]
    )
    assert root["size"] >= size
    assert world.client.post("/v1/audit/checkpoint", headers=aud).status_code == 403


def _root_at(world: World, size: int) -> bytes:
    return world.platform.custody.ledger.root_hash(size)


def test_health_and_metrics_are_open(world: World) -> None:
    assert world.client.get("/healthz").json()["status"] == "ok"
    text = world.client.get("/metrics").text
    assert "trustfeed_ledger_size" in text and "trustfeed_http_requests" in text


def test_the_platform_runs_on_nats_jetstream(tmp_path: Path) -> None:
    """The scale-out event log behind the same platform: ingest, drain, feed."""
    import socket
    import uuid

    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError as exc:
        pytest.skip(f"NATS at 127.0.0.1:4222 not reachable: {exc}")
    stream = f"trustfeed-test-{uuid.uuid4().hex[:10]}"
    w = open_world(tmp_path, log_url=f"nats://127.0.0.1:4222/{stream}")
    try:
        for item in range(1, 6):
            w.upload(item)
        batch = events("u1", [1, 2, 3]) + events("alice", [1, 2])
        assert ingest(w, batch)["accepted"] == 5 and ingest(w, batch)["duplicates"] == 5
        w.platform.drain()
        assert w.platform.trainer.applied == 5 and w.platform.archiver.position == 5
        page = w.client.get("/v1/users/alice/feed", headers=w.headers("alice")).json()
        assert {e["item_id"] for e in page["items"]} <= {3, 4, 5}
    finally:
        w.platform.close()
        _delete_stream(stream)


def _delete_stream(stream: str) -> None:
    import asyncio

    import nats

    async def delete() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            js = nc.jetstream()
            await js.delete_stream(stream)
            await js.delete_key_value(f"{stream}-positions")
        except Exception:  # the stream's own test already covers cleanup errors
            pass
        finally:
            await nc.close()

    asyncio.run(delete())

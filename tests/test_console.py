"""The web console in-process: sign-in, roles, CSRF, every page with data, approvals, reviews."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests._service_world import World, open_world

from trustfeed.api.console._charts import Bins, line_chart, nice_scale, stacked_bars
from trustfeed.api.console._ledger_view import (
    DecisionFilter,
    checkpoint_status,
    recent_decisions,
)
from trustfeed.custody import Ledger, decode_record
from trustfeed.custody.ledger import generate_signing_key
from trustfeed.moderation import Actor
from trustfeed.service import CatalogItem
from trustfeed.service._exposure import ExposureLog, Point

T0 = 1_700_000_000.0  # a fixed minute boundary for exposure buckets


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = open_world(tmp_path)
    yield w
    w.platform.close()


def browser(world: World) -> TestClient:
    """A separate cookie jar: one person's browser."""
    return TestClient(world.client.app)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(world: World, who: str, next_path: str = "") -> TestClient:
    client = browser(world)
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"token": world.tokens[who], "csrf": csrf_of(form.text), "next": next_path},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def post(client: TestClient, page: str, url: str, /, **data: str):
    """Submit a form the way a browser does: with the CSRF token of the page it is on."""
    token = csrf_of(client.get(page).text)
    return client.post(url, data={"csrf": token, **data}, follow_redirects=False)


def request_grant(world: World) -> str:
    response = world.client.post("/v1/custodian/grants", headers=world.headers("custodian"), json={
        "grantee": "analyst-1", "grantee_role": "operator", "grantee_jurisdiction": "US",
        "actions": ["read"], "data_classes": ["watch_history"], "purpose": "fraud_review",
        "expires_in": 3600, "justification": "ticket 42",
    })  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["id"]


def flagged(world: World, item_id: int = 5, queue: str = "default") -> int:
    world.upload(item_id, creator="alice", caption="a flagged clip")
    return world.platform.review.enqueue(
        item_id, reason="user report", detected_by=Actor("rule", "user-report"), queue=queue
    )


def ledger_records(world: World, kind: str) -> list[dict]:
    ledger = world.platform.custody.ledger
    records = [decode_record(e) for e in ledger.entries(0, ledger.size())]
    return [r for r in records if r["kind"] == kind]


# ---------------------------------------------------------------- sign-in and roles


def test_pages_redirect_to_login_and_back(world: World) -> None:
    client = browser(world)
    response = client.get("/console/moderation", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fmoderation"
    signed = sign_in(world, "moderator", next_path="/console/moderation")
    assert signed.get("/console/moderation").status_code == 200


def test_login_lands_on_the_roles_home_and_sets_a_strict_cookie(world: World) -> None:
    client = browser(world)
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"token": world.tokens["moderator"], "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console/moderation"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("tf_console="))
    for flag in ("HttpOnly", "SameSite=strict", "Path=/console"):
        assert flag in cookie


def test_login_refuses_bad_tokens_roles_without_pages_and_forged_forms(world: World) -> None:
    client = browser(world)
    form = csrf_of(client.get("/console/login").text)
    bad = client.post("/console/login", data={"token": "tf_nope", "csrf": form})
    assert bad.status_code == 401 and "not valid" in bad.text
    for who in ("licensor", "alice"):
        form = csrf_of(client.get("/console/login").text)
        refused = client.post("/console/login", data={"token": world.tokens[who], "csrf": form})
        assert refused.status_code == 403 and "no console pages" in refused.text
    forged = browser(world).post("/console/login", data={"token": world.tokens["custodian"]})
    assert forged.status_code == 403 and "tf_console=" not in forged.headers.get("set-cookie", "")
    assert "tf_console" not in client.cookies


@pytest.mark.parametrize(
    ("who", "allowed", "refused"),
    [
        ("custodian", ["/console", "/console/oversight"], ["/console/moderation"]),
        ("auditor", ["/console", "/console/oversight"], ["/console/moderation"]),
        ("moderator", ["/console/moderation"], ["/console", "/console/oversight"]),
        ("operator", ["/console/oversight"], ["/console", "/console/moderation"]),
    ],
)
def test_each_role_sees_its_pages_and_a_403_page_elsewhere(
    world: World, who: str, allowed: list[str], refused: list[str]
) -> None:
    client = sign_in(world, who)
    for path in allowed:
        assert client.get(path).status_code == 200, path
    for path in refused:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "text/html" in response.headers["content-type"] and "Not allowed" in response.text


def test_logout_and_revoked_tokens_end_the_session(world: World) -> None:
    client = sign_in(world, "auditor")
    response = post(client, "/console", "/console/logout")
    assert response.status_code == 303 and "/console/login" in response.headers["location"]
    assert client.get("/console", follow_redirects=False).status_code == 303
    client = sign_in(world, "auditor")
    token_id = next(t.id for t in world.platform.tokens.list() if t.principal.id == "auditor-1")
    world.platform.tokens.revoke(token_id)
    response = client.get("/console", follow_redirects=False)
    assert response.status_code == 303 and "tf_console=" in response.headers["set-cookie"]


def test_posts_without_the_sessions_csrf_token_are_refused(world: World) -> None:
    grant = request_grant(world)
    client = sign_in(world, "custodian2")
    other = csrf_of(sign_in(world, "custodian3").get("/console").text)
    for data in ({}, {"csrf": "0" * 64}, {"csrf": other}):
        response = client.post(f"/console/grants/{grant}/approve", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert world.platform.custody.policy.grants.get(grant).approvals == ()


def test_pages_carry_security_headers_and_load_nothing_from_outside(world: World) -> None:
    client = sign_in(world, "custodian")
    response = client.get("/console")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert 'src="http' not in response.text and 'href="http' not in response.text
    assert client.get("/console/static/console.css").status_code == 200
    assert client.get("/console/static/console.js").status_code == 200
    assert not any(
        p.startswith("/console") for p in world.client.get("/openapi.json").json()["paths"]
    )


# ---------------------------------------------------------------- custodian and auditor


def test_overview_shows_the_ledger_a_verified_checkpoint_and_decisions(world: World) -> None:
    world.client.get("/v1/users/alice/feed", headers=world.headers("bob"))  # a domestic deny
    world.client.get("/v1/users/alice/feed", headers=world.headers("licensor"))  # a transfer
    client = sign_in(world, "custodian")
    before = client.get("/console")
    assert "nothing to verify" in before.text and "no checkpoint has been signed yet" in before.text
    assert post(client, "/console", "/console/checkpoint").status_code == 303
    page = client.get("/console")
    assert page.status_code == 200
    size = world.platform.custody.ledger.size()
    assert f'id="ledger-size">{size:,}<' in page.text
    assert '<span class="badge ok">verifies</span>' in page.text
    transfers = page.text.split('id="transfers"')[1].split('id="decisions"')[0]
    assert "licensor-1" in transfers and "transfer-needs-grant" in transfers
    assert "<td>user</td>" not in transfers  # bob is domestic: denied, but not a transfer


def test_decision_filters_and_pages(world: World) -> None:
    for _ in range(30):
        world.client.get("/v1/users/alice/feed", headers=world.headers("bob"))
    world.client.get("/v1/users/alice/feed", headers=world.headers("licensor"))
    client = sign_in(world, "auditor")
    licensor = client.get("/console?decision=deny&role=licensor").text
    table = licensor.split('id="decisions"')[1]
    assert "licensor-1" in table and "<td>user</td>" not in table
    first = client.get("/console?role=user&data_class=pseudonymous_events&purpose=feed_serving")
    rows = first.text.split('id="decisions"')[1].count('<span class="badge deny">')
    assert rows == 25 and "Older →" in first.text
    older = re.search(r'href="(/console\?[^"]*before=\d+)[^"]*"', first.text)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert second.text.split('id="decisions"')[1].count('<span class="badge deny">') == 5
    assert client.get("/console?role=wizard").status_code == 400
    assert client.get("/console?purpose=<script>").status_code == 400


def test_custodians_other_than_the_requester_approve_a_grant(world: World) -> None:
    grant = request_grant(world)
    requester = sign_in(world, "custodian")
    own = requester.get("/console")
    assert grant in own.text and "you requested it" in own.text
    assert f"/console/grants/{grant}/approve" not in own.text
    refused = post(requester, "/console", f"/console/grants/{grant}/approve")
    assert refused.status_code == 409
    for n, who in enumerate(("custodian2", "custodian3"), start=1):
        client = sign_in(world, who)
        response = post(client, "/console", f"/console/grants/{grant}/approve")
        assert response.status_code == 303, response.text
        assert len(world.platform.custody.policy.grants.get(grant).approvals) == n
    assert "is recorded in the ledger" in client.get(response.headers["location"]).text
    grants = world.platform.custody.policy.grants
    assert grants.get(grant).status(grants.now()) == "active"
    assert grant not in client.get("/console").text.split('id="grants"')[1].split("</section>")[0]
    approvers = [r["approver"] for r in ledger_records(world, "grant_approve")]
    assert approvers == ["custodian-2", "custodian-3"]


def test_auditors_see_grants_but_cannot_approve(world: World) -> None:
    grant = request_grant(world)
    client = sign_in(world, "auditor")
    page = client.get("/console")
    assert grant in page.text and "only custodians approve grants" in page.text
    assert post(client, "/console", f"/console/grants/{grant}/approve").status_code == 403
    assert post(client, "/console", "/console/checkpoint").status_code == 403


def test_checkpoint_status_catches_a_wrong_key_origin_or_root(tmp_path: Path) -> None:
    signer, verifier = generate_signing_key("test.example/log")
    ledger = Ledger.open("sqlite://", signing_key=signer, origin="test.example/log")
    ledger.append_many([b"a", b"b", b"c"])
    ledger.checkpoint()
    key = tmp_path / "ledger.pub"
    key.write_text(verifier + "\n")
    good = checkpoint_status(ledger, key, "test.example/log")
    assert good.verified and good.size == 3 and good.uncovered == 0
    ledger.append(b"d")
    assert checkpoint_status(ledger, key, "test.example/log").uncovered == 1
    assert "origin" in checkpoint_status(ledger, key, "other.example/log").problem
    _, stranger = generate_signing_key("test.example/log")
    key.write_text(stranger + "\n")
    wrong_key = checkpoint_status(ledger, key, "test.example/log")
    assert wrong_key.present and not wrong_key.verified and "signature" in wrong_key.problem
    key.write_text(verifier + "\n")
    ledger.root_hash = lambda size=None: b"\x00" * 32  # type: ignore[method-assign]
    forged = checkpoint_status(ledger, key, "test.example/log")
    assert not forged.verified and "differs from the signed root" in forged.problem
    ledger.close()


def test_recent_decisions_pages_back_from_the_end() -> None:
    from trustfeed.custody import encode_record

    ledger = Ledger.open("sqlite://", origin="t/log")
    records = [encode_record("decision", decision="deny" if i % 3 else "allow", role="user",
                             jurisdiction="US" if i % 2 else "CN", data_class="messages",
                             purpose="p", at=float(i)) for i in range(40)]  # fmt: skip
    ledger.append_many([b"not json", *records])
    wanted = DecisionFilter(decision="deny", transfers=True, domestic="US")
    first = recent_decisions(ledger, wanted, limit=5)
    indices = [r.index for r in first.rows]
    assert indices == sorted(indices, reverse=True) and len(indices) == 5
    assert all(
        r.record["jurisdiction"] == "CN" and r.record["decision"] == "deny" for r in first.rows
    )
    rest = recent_decisions(ledger, wanted, before=first.older, limit=100)
    assert rest.older is None and not set(indices) & {r.index for r in rest.rows}
    assert len(first.rows) + len(rest.rows) == sum(1 for i in range(40) if i % 3 and i % 2 == 0)
    sparse = recent_decisions(ledger, wanted, limit=100, scan_limit=10)
    assert sparse.older is not None and sparse.older > 0
    ledger.close()


# ---------------------------------------------------------------- moderators


def test_review_flow_claim_blurred_reveal_decide(world: World) -> None:
    job = flagged(world)
    client = sign_in(world, "moderator")
    queue = client.get("/console/moderation")
    assert f'id="job-{job}"' in queue.text and "user report" in queue.text
    claimed = post(client, "/console/moderation", f"/console/moderation/jobs/{job}/claim")
    assert claimed.headers["location"] == f"/console/moderation/jobs/{job}"
    review = client.get(claimed.headers["location"])
    assert 'class="media blurred"' in review.text and "<img" in review.text
    assert "violence-graphic" in review.text  # the taxonomy's policies are in the select
    media = client.get("/console/moderation/items/5/media")
    assert media.headers["content-type"] == "image/png" and media.content[:4] == b"\x89PNG"
    revealed = post(client, review.url.path, f"/console/moderation/jobs/{job}/reveal/5")
    assert revealed.status_code == 303 and revealed.headers["location"].endswith("#item-5")
    assert 'class="media blurred"' not in client.get(review.url.path).text
    assert ledger_records(world, "moderation_media_reveal")[0]["moderator"] == "moderator:mod-ann"
    decided = post(client, review.url.path, f"/console/moderation/jobs/{job}/decision",
                   action="removed", policy_id="violence-graphic", note="gore")  # fmt: skip
    assert decided.status_code == 303, decided.text
    assert "decided" in client.get(decided.headers["location"]).text
    assert world.platform.moderation.gate.status(5) == "removed"


def test_reveal_answers_json_for_the_pages_script(world: World) -> None:
    job = flagged(world)
    client = sign_in(world, "moderator")
    page = f"/console/moderation/jobs/{job}"
    post(client, "/console/moderation", f"{page}/claim")
    token = csrf_of(client.get(page).text)
    response = client.post(
        f"{page}/reveal/5", data={"csrf": token}, headers={"Accept": "application/json"}
    )
    assert response.json() == {"item_id": 5, "blurred": False}


def test_a_review_needs_the_lease_and_a_valid_decision(world: World) -> None:
    job = flagged(world)
    ann, bob = sign_in(world, "moderator"), sign_in(world, "moderator2")
    page = f"/console/moderation/jobs/{job}"
    assert bob.get(page).status_code == 409
    post(ann, "/console/moderation", f"{page}/claim")
    taken = post(bob, "/console/moderation", f"{page}/claim")
    assert taken.status_code == 409 and "claimed by" in taken.text
    assert post(bob, "/console/moderation", f"{page}/reveal/5").status_code == 409
    no_action = post(ann, page, f"{page}/decision", action="pending", policy_id="violence-graphic")
    assert no_action.status_code == 400
    unknown = post(ann, page, f"{page}/decision", action="removed", policy_id="made-up")
    assert unknown.status_code == 400 and "made-up" in unknown.text
    assert world.platform.review.job(job).state == "open"
    released = post(ann, page, f"{page}/release")
    assert released.status_code == 303 and world.platform.review.job(job).claimed_by is None


def test_claim_next_takes_from_the_named_queue(world: World) -> None:
    flagged(world, 5, queue="hate-text")
    other = flagged(world, 6, queue="default")
    client = sign_in(world, "moderator")
    page = client.get("/console/moderation?queue=hate-text").text
    assert 'hate-text <span class="muted">(1)</span>' in page and f'id="job-{other}"' not in page
    taken = post(client, "/console/moderation", "/console/moderation/claim-next", queue="hate-text")
    job = int(taken.headers["location"].rsplit("/", 1)[1])
    assert world.platform.review.job(job).queue == "hate-text"
    assert f"/console/moderation/jobs/{job}" in client.get("/console/moderation").text  # held
    empty = post(client, "/console/moderation", "/console/moderation/claim-next", queue="hate-text")
    assert "notice=empty" in empty.headers["location"]


def test_videos_play_in_a_video_element_and_odd_types_are_not_served_as_pages(world: World) -> None:
    platform = world.platform
    for item_id, media_type in ((7, "video/mp4"), (8, "text/html")):
        platform.catalog.add(CatalogItem(item_id, item_id, "c", "t", 1000, "", media_type, T0))
        (platform.media_dir / str(item_id)).write_bytes(b"<script>alert(1)</script>")
    job = platform.review.enqueue(7, reason="report", detected_by=Actor("rule", "r"))
    client = sign_in(world, "moderator")
    post(client, "/console/moderation", f"/console/moderation/jobs/{job}/claim")
    review = client.get(f"/console/moderation/jobs/{job}").text
    assert "<video" in review and " controls" not in review.split("<video")[1].split(">")[0]
    assert client.get("/console/moderation/items/7/media").headers["content-type"] == "video/mp4"
    odd = client.get("/console/moderation/items/8/media")
    assert odd.headers["content-type"] == "application/octet-stream"
    assert "sandbox" in odd.headers["content-security-policy"]


def test_appeals_are_assigned_and_overturned_by_another_moderator(world: World) -> None:
    job = flagged(world)
    ann, bob = sign_in(world, "moderator"), sign_in(world, "moderator2")
    page = f"/console/moderation/jobs/{job}"
    post(ann, "/console/moderation", f"{page}/claim")
    post(ann, page, f"{page}/decision", action="removed", policy_id="violence-graphic")
    appeal = world.client.post(
        "/v1/appeals",
        json={"item_id": 5, "statement": "it is fine"},
        headers=world.headers("alice"),
    ).json()["id"]
    assert "your decision: another moderator reviews it" in ann.get("/console/moderation").text
    refused = post(ann, "/console/moderation", f"/console/moderation/appeals/{appeal}/assign")
    assert refused.status_code == 409
    assigned = post(bob, "/console/moderation", f"/console/moderation/appeals/{appeal}/assign")
    assert assigned.status_code == 303
    assert world.platform.appeals.get(appeal).assigned_to == "moderator:mod-bob"
    resolved = post(bob, "/console/moderation", f"/console/moderation/appeals/{appeal}/resolve",
                    outcome="overturned", note="satire")  # fmt: skip
    assert resolved.status_code == 303 and "appeal-overturned" in resolved.headers["location"]
    assert world.platform.moderation.gate.status(5) == "eligible"
    assert f'id="appeal-{appeal}"' not in bob.get("/console/moderation").text


# ---------------------------------------------------------------- oversight


def record_exposure(world: World) -> None:
    """Three minutes of impressions, with a clock the test controls."""
    now = [T0]
    log = ExposureLog(world.platform.custody.engine, clock=lambda: now[0])
    for minute, (topic, creator, personal, n) in enumerate([
        ("cats", "ann", True, 5), ("dogs", "bo", False, 2), ("cats", "cy", True, 3),
    ]):  # fmt: skip
        now[0] = T0 + 60 * minute
        log.record([(topic, creator)] * n, personalised=personal)
    log.flush()


def test_oversight_draws_exposure_by_topic_and_creator(world: World) -> None:
    client = sign_in(world, "operator")
    assert "No impressions recorded" in client.get("/console/oversight").text
    record_exposure(world)
    page = client.get("/console/oversight?window=all").text
    assert page.count('<svg class="plot"') == 3 and page.count("<rect x=") >= 6
    for label in ("cats", "dogs", "ann", "bo", "cy", "personalised", "non-personalised"):
        assert f">{label}<" in page or f"{label}:" in page, label
    assert "<polyline" in page and "Data table" in page
    cats = re.search(r"<th scope=\"row\">cats</th><td class=\"num\">(\d+)</td>", page)
    assert cats and cats.group(1) == "8"
    only_plain = client.get("/console/oversight?window=all&feed=non-personalised").text
    topic_chart = only_plain.split('id="topic-title"')[1].split("</svg>")[0]
    assert "dogs:" in topic_chart and "cats:" not in topic_chart
    assert client.get("/console/oversight?window=forever").status_code == 400


def test_stacked_bars_stack_to_the_total_and_group_the_rest() -> None:
    samples = [Point(int(T0) + 60 * (i % 3), f"v{i}", i + 1) for i in range(9)]
    chart = stacked_bars(samples, step=60, title="Topic", keep=3)
    assert chart is not None
    assert [name for name, _ in chart.legend] == ["v8", "v7", "v6", "other"]
    assert chart.table_rows[0][-1] == str(1 + 4 + 7)  # bucket 0 holds v0, v3, v6
    bottom = chart.bottom
    for row in chart.table_rows:
        assert sum(int(c.replace(",", "")) for c in row[1:-1]) == int(row[-1].replace(",", ""))
    assert all(r.y + r.height <= bottom + 0.5 and r.height > 0 for r in chart.rects)
    assert stacked_bars([], step=60, title="Topic") is None


def test_bins_scale_and_lines() -> None:
    bins = Bins.covering([0, 60, 86_400 * 3], 60, max_bins=36)
    assert bins.count <= 36 and bins.of(86_400 * 3) == bins.count - 1
    assert nice_scale(0) == (1, 1) and nice_scale(999) == (1000, 250)
    assert nice_scale(3) == (3, 1) and nice_scale(9) == (9, 3)
    chart = line_chart({"a": [(0, 3)], "b": [(60, 1), (120, 4)]}, step=60, title="Feeds")
    assert chart is not None and len(chart.lines) == 2
    assert chart.table_rows == [["00:00", "3", "0"], ["00:01", "0", "1"], ["00:02", "0", "4"]]
    assert line_chart({"a": []}, step=60, title="x") is None

"""The web console in a real browser: Debian's Chromium driven by Playwright.

A uvicorn server runs in a thread on a free 127.0.0.1 port over a service
world; a moderator clicks through a review (blurred media, reveal, decision)
and two custodians approve a grant. Each step is screenshotted into the test's
artifact directory, and copied to ``test-artifacts/console/`` at the
repository root when ``TRUSTFEED_ARTIFACTS`` is set (CI keeps those).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from tests._service_world import World, open_world

from trustfeed.custody import decode_record
from trustfeed.moderation import Actor
from trustfeed.service._exposure import ExposureLog

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (`make system-deps` installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@dataclass
class Server:
    url: str
    world: World


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The platform's app served by uvicorn in a thread (no websockets, no lifespan)."""
    world = open_world(tmp_path / "home")
    port = free_port()
    config = uvicorn.Config(
        world.client.app, host="127.0.0.1", port=port, log_level="warning",
        ws="none", lifespan="off", loop="asyncio", http="h11",
    )  # fmt: skip
    serving = uvicorn.Server(config)
    thread = threading.Thread(target=serving.run, name="console-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not serving.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", world)
    serving.should_exit = True
    thread.join(timeout=15)
    world.platform.close()


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where this test's screenshots go; copied for CI when TRUSTFEED_ARTIFACTS is set."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    if os.environ.get("TRUSTFEED_ARTIFACTS"):
        target = REPO / "test-artifacts" / "console"
        target.mkdir(parents=True, exist_ok=True)
        for shot in folder.glob("*.png"):
            shutil.copy2(shot, target / shot.name)


@pytest.fixture
def chromium() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield browser
        browser.close()


def person(chromium: Any, server: Server, who: str, shots: Path | None = None) -> Any:
    """A fresh browser context (its own cookies) signed in as ``who``."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/console/login")
    page.get_by_label("API token").fill(server.world.tokens[who])
    if shots is not None:
        snap(page, shots, "00-login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as")).to_be_visible()
    return page


def snap(page: Any, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_a_moderator_reviews_blurred_media_reveals_it_and_decides(
    server: Server, chromium: Any, shots: Path
) -> None:
    world = server.world
    world.upload(5, creator="alice", caption="a clip someone reported")
    job = world.platform.review.enqueue(
        5, reason="user report: graphic violence", detected_by=Actor("rule", "user-report")
    )
    page = person(chromium, server, "moderator", shots)
    expect(page).to_have_url(f"{server.url}/console/moderation")
    expect(page.locator(f"#job-{job}")).to_contain_text("user report")
    snap(page, shots, "01-moderation-queue")

    page.get_by_role("button", name=f"Claim job {job}").click()
    expect(page).to_have_url(f"{server.url}/console/moderation/jobs/{job}")
    figure, image = page.locator("#item-5"), page.locator("#item-5 img")
    expect(figure).to_have_class(re.compile(r"\bblurred\b"))
    page.wait_for_function("() => document.querySelector('#item-5 img').naturalWidth > 0")
    assert "blur" in image.evaluate("e => getComputedStyle(e).filter")
    snap(page, shots, "02-review-blurred")

    page.get_by_role("button", name="Reveal media of item 5").click()
    expect(figure).not_to_have_class(re.compile(r"\bblurred\b"))
    expect(page.get_by_role("status")).to_contain_text("recorded in the audit ledger")
    expect(image).to_have_css("filter", "none")  # retried: the unblur is a short transition
    reveals = _records(world, "moderation_media_reveal")
    assert [(r["job"], r["item"], r["moderator"]) for r in reveals] == [
        (job, 5, "moderator:mod-ann")
    ]
    snap(page, shots, "03-review-revealed")

    page.get_by_label("Policy (from the taxonomy)").select_option("violence-graphic")
    expect(page.get_by_label("Action")).to_have_value("removed")  # the policy's default
    page.get_by_label("Note").fill("graphic violence, no news context")
    snap(page, shots, "04-review-decision-form")
    page.get_by_role("button", name="Record decision").click()
    expect(page.get_by_role("status")).to_contain_text(f"Review job {job} decided")
    assert world.platform.moderation.gate.status(5) == "removed"
    snap(page, shots, "05-moderation-decided")

    page.goto(f"{server.url}/console")  # the custodians' overview is not a moderator's page
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    snap(page, shots, "06-forbidden-for-a-moderator")


def test_two_custodians_approve_a_grant_the_third_requested(
    server: Server, chromium: Any, shots: Path
) -> None:
    world = server.world
    world.client.get("/v1/users/alice/feed", headers=world.headers("licensor"))  # a denied transfer
    response = world.client.post("/v1/custodian/grants", headers=world.headers("custodian"), json={
        "grantee": "analyst-1", "grantee_role": "operator", "grantee_jurisdiction": "US",
        "actions": ["read"], "data_classes": ["watch_history"], "purpose": "fraud_review",
        "expires_in": 3600, "justification": "ticket 42: account takeover",
    })  # fmt: skip
    grant = response.json()["id"]
    requester = person(chromium, server, "custodian")
    requester.get_by_role("button", name="Sign a checkpoint now").click()
    expect(requester.locator("#checkpoint-verdict")).to_contain_text("verifies")
    expect(requester.locator(f"#grant-{grant}")).to_contain_text("you requested it")
    snap(requester, shots, "07-overview-requester")

    for n, who in enumerate(("custodian2", "custodian3"), start=1):
        page = person(chromium, server, who)
        page.get_by_role("button", name=f"Approve grant {grant}").click()
        expect(page.get_by_role("status").first).to_contain_text(f"approval of grant {grant}")
        assert len(world.platform.custody.policy.grants.get(grant).approvals) == n
        snap(page, shots, f"0{7 + n}-overview-approved-by-{who}")
    grants = world.platform.custody.policy.grants
    assert grants.get(grant).status(grants.now()) == "active"
    expect(page.locator(f"#grant-{grant}")).to_have_count(0)


def test_oversight_charts_render(server: Server, chromium: Any, shots: Path) -> None:
    world = server.world
    now = [time.time() - 90 * 60]
    log = ExposureLog(world.platform.custody.engine, clock=lambda: now[0])
    topics, creators = ("cats", "dogs", "cooking", "news", "sport"), ("ann", "bo", "cy", "di")
    for minute in range(90):  # an hour and a half of feeds, a minute at a time
        now[0] += 60
        for k, topic in enumerate(topics):
            served = [(topic, creators[(minute + k) % 4])] * (2 + (minute * (k + 1)) % 5 + k)
            log.record(served, personalised=(minute + k) % 3 != 0)
    log.flush()
    page = person(chromium, server, "auditor")
    page.get_by_role("link", name="Oversight").click()
    expect(page.locator("svg[role=img]")).to_have_count(3)
    assert page.locator("svg[role=img] rect").count() > 20
    snap(page, shots, "10-oversight")


def _records(world: World, kind: str) -> list[dict]:
    ledger = world.platform.custody.ledger
    return [r for r in map(decode_record, ledger.entries(0, ledger.size())) if r["kind"] == kind]

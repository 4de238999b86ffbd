"""The API against its own OpenAPI schema: no input makes it fail (5xx), for any party.

Schemathesis generates requests for every operation in the schema (the
schema's examples, boundary values, then random valid and invalid data), and
each is sent twice: with a token of a party drawn from all of them (so
refusals and policy denials are fuzzed too), and with a token of the role the
route is for (user routes as the user themself), so the handlers run deep.
Every response must be below 500 and, where the schema documents its status,
have the documented content type and body.

A plain walk over every route checks that none serves anything without a
valid token: each API route answers 401, each console page sends the browser
to the login page.
"""

from __future__ import annotations

import re
import traceback
import zlib
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, settings
from schemathesis import APIOperation, BaseSchema
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.hypothesis.builder import (
    HypothesisTestConfig,
    HypothesisTestMode,
    create_test,
)
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from tests._service_world import World, open_world

#: A token of each party the schema is fuzzed with (alice is a user).
ROLES = ("operator", "alice", "moderator", "custodian", "auditor", "licensor")
#: Random examples per operation, on top of the examples and coverage cases.
SETTINGS = settings(
    max_examples=25, deadline=None, database=None, derandomize=True,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
#: Routes that need no token, and the console's login form (the way to get a session).
OPEN_ROUTES = {
    "/healthz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
    "/console/login", "/console/logout",
}  # fmt: skip
BAD_TOKEN = "tf_0000000000000000_" + "x" * 43


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Uploads, events from a few users, a trained model and a signed checkpoint."""
    w = open_world(tmp_path_factory.mktemp("schema"))
    for item in range(1, 9):
        w.upload(item, topic="cats" if item % 2 else "dogs", creator=f"creator-{item % 3}")
    events = [
        {"idempotency_key": f"schema-{user}-{n}", "user_id": user, "item_id": 1 + (n + u) % 8,
         "event": "view", "timestamp": 1_700_000_000.0 + n, "watch_ms": 9000, "duration_ms": 15000}
        for u, user in enumerate(["alice", "bob", "carol", "dave"])
        for n in range(6)
    ]  # fmt: skip
    response = w.client.post("/v1/events", json={"events": events}, headers=w.headers("operator"))
    assert response.status_code == 202, response.text
    w.platform.drain()
    assert w.client.post("/v1/audit/checkpoint", headers=w.headers("custodian")).status_code == 200
    yield w
    w.platform.close()


def _app(world: World) -> FastAPI:
    app = world.client.app
    assert isinstance(app, FastAPI)
    return app


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route, included routers' routes with their prefix."""
    return [
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        for method in sorted(route.methods or ())
        if method not in ("HEAD", "OPTIONS")
    ]


def test_the_fuzzed_world_has_content(world: World) -> None:
    feed = world.client.get("/v1/users/alice/feed?k=5", headers=world.headers("alice"))
    assert feed.status_code == 200 and feed.json()["items"], feed.text
    assert world.platform.custody.ledger.size() > 0


def test_every_route_needs_a_valid_token(world: World) -> None:
    checked = 0
    for method, path in _routes(_app(world)):
        if path in OPEN_ROUTES:
            continue
        url = re.sub(r"\{[^}/]+\}", "1", path)
        for headers in ({}, {"Authorization": f"Bearer {BAD_TOKEN}"}):
            response = world.client.request(method, url, headers=headers, follow_redirects=False)
            where = (method, path, response.status_code)
            if path.startswith("/console"):
                # A page for people: to the login page, never the page itself.
                assert response.status_code == 303, where
                assert response.headers["location"].startswith("/console/login"), where
            else:
                assert response.status_code == 401, where
                assert response.headers.get("www-authenticate") == "Bearer", where
                assert "token" in response.json()["detail"], where
            checked += 1
    assert checked >= 2 * 45, "fewer routes than the app has: the walk missed some"


def test_the_schema_lists_every_api_route(world: World) -> None:
    app = _app(world)
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    api = {(m, p) for m, p in _routes(app) if p.startswith("/v1/")}
    assert api <= documented, f"routes missing from the schema: {sorted(api - documented)}"
    assert len(api) >= 35


def _own_role(method: str, path: str) -> str:
    """The role a route is for."""
    if path.startswith("/v1/users/"):
        return "alice"
    if path.startswith("/v1/moderation/"):
        return "moderator"
    if path.startswith("/v1/custodian/") or (path.startswith("/v1/audit/") and method == "POST"):
        return "custodian"
    if path.startswith("/v1/audit/"):
        return "auditor"
    return "operator"  # events, items, appeals on a creator's behalf, ops


def _send(case: schemathesis.Case, world: World) -> None:
    method, path = case.operation.method.upper(), case.operation.path
    # A party drawn from the case's content: stable, so shrinking replays the same one.
    content = repr((case.path_parameters, case.query, case.body)).encode()
    case.call_and_validate(
        headers=world.headers(ROLES[zlib.crc32(content) % len(ROLES)]), checks=CHECKS
    )
    own = _own_role(method, path)
    if own == "alice" and not path.endswith("/erase") and isinstance(case.path_parameters, dict):
        # As alice herself, so the policy allows and the handler runs; erasing her
        # would revoke her token, so that route is fuzzed with other ids only.
        case.path_parameters["user_id"] = "alice"
    case.call_and_validate(headers=world.headers(own), checks=CHECKS)


def _fuzz(schema: BaseSchema, operation: APIOperation, world: World) -> None:
    """Schemathesis's phases for one operation: the schema's examples, coverage
    (boundary values: huge ids, empty strings, missing fields …) and fuzzing.

    This is the test ``schema.parametrize()`` builds. It is built here because
    that decorator needs the schema at import time, and its lazy form
    (``schemathesis.pytest.from_fixture``) sets ``request.node._nodeid``, which
    pytest 9 no longer has; this schema needs a running platform.
    """

    def check(case: schemathesis.Case) -> None:
        _send(case, world)

    config = HypothesisTestConfig(
        project=schema.config, modes=list(HypothesisTestMode), settings=SETTINGS
    )
    create_test(operation=operation, test_func=check, config=config)()


def test_no_input_from_any_party_gets_a_server_error(world: World) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", _app(world))
    failures = {}
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise AssertionError(f"the schema has an invalid operation: {result.err()}")
        operation = result.ok()
        try:
            _fuzz(schema, operation, world)
        except (Exception, BaseExceptionGroup) as exc:  # fuzz every operation, report all
            failures[operation.label] = "".join(traceback.format_exception(exc))
    report = "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    assert not failures, f"{len(failures)} operations failed:\n{report}"

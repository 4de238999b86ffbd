"""The FastAPI application: one router per party over one :class:`Platform`."""

from __future__ import annotations

from fastapi import FastAPI

from trustfeed import __version__
from trustfeed.api import (
    _auditor,
    _custodian,
    _errors,
    _moderation,
    _operator,
    _ops,
    _users,
    console,
)
from trustfeed.service import Platform

DESCRIPTION = """trustfeed's HTTP API. Every route but `/healthz`, `/metrics` and the docs
needs a bearer token issued by the custodian; each token is bound to one
principal, role and jurisdiction. Routes that touch personal data ask the
policy point, and its decision (allow or deny) is written to the audit ledger."""


def create_app(platform: Platform) -> FastAPI:
    """The API over an opened platform (its lifecycle belongs to the caller)."""
    app = FastAPI(title="trustfeed", version=__version__, description=DESCRIPTION)
    app.state.platform = platform
    _errors.install(app)
    _ops.install(app, platform)
    for module in (_operator, _users, _moderation, _custodian, _auditor, _ops):
        app.include_router(module.router)
    console.install(app)  # the web console's pages, static files and HTML error pages
    return app

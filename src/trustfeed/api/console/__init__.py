"""The web console: server-rendered pages for the custodian, auditor, moderators and operator.

Pages (all under ``/console``, none in the OpenAPI schema):

* ``/login`` — paste an API token; it is kept in an HttpOnly, SameSite=Strict cookie;
* ``/`` — custodians and auditors: ledger size, the latest checkpoint and
  whether it verifies, policy decisions with filters, denied transfers, grants
  awaiting approval (custodians approve them here);
* ``/moderation`` — moderators: queues, reviews with media blurred until
  revealed (each reveal is in the ledger), decisions citing the taxonomy, appeals;
* ``/oversight`` — exposure by topic and creator over time, personalised or not.

Every page authenticates the cookie's token and checks the role; every form
POST carries a CSRF token (see ``_session``). Nothing is loaded from outside.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from trustfeed.api.console import _login, _moderation, _oversight, _overview
from trustfeed.api.console._render import HERE, SECURITY_HEADERS, home_of, page
from trustfeed.api.console._session import COOKIE, PREFIX, NeedLogin, Refused, end_session

#: Every console page; none is in the OpenAPI schema (they are HTML for people).
router = APIRouter()
for _module in (_login, _overview, _moderation, _oversight):
    router.include_router(_module.router, include_in_schema=False)


async def _to_login(request: Request, exc: Exception) -> RedirectResponse:
    """No valid session: to the login page, coming back to the page asked for (GETs only)."""
    wanted = exc.next_path if isinstance(exc, NeedLogin) and request.method == "GET" else ""
    query = "?" + urlencode({"next": wanted}) if wanted.startswith(PREFIX) else ""
    target = f"{PREFIX}/login{query}"
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    if COOKIE in request.cookies:  # expired or revoked: forget it
        end_session(response)
    return response


async def _refused(request: Request, exc: Exception) -> HTMLResponse:
    if not isinstance(exc, Refused):  # registered for Refused only
        raise exc
    home = home_of(exc.session.principal.role) if exc.session else f"{PREFIX}/login"
    return page(
        request,
        "error.html",
        exc.session,
        status=exc.status,
        status_code=exc.status,
        message=exc.message,
        home=home,
    )


def install(app: FastAPI) -> None:
    """Add the console's pages, its static files and its HTML error pages to ``app``."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(NeedLogin, _to_login)
    app.add_exception_handler(Refused, _refused)


__all__ = ["install", "router"]

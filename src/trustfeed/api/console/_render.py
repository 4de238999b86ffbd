"""Rendering console pages: the templates, the navigation per role, security headers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from trustfeed.api.console._session import PREFIX, Session
from trustfeed.custody import Role

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

#: (label, path, roles): the pages each role sees in the navigation, home first.
NAV: tuple[tuple[str, str, frozenset[Role]], ...] = (
    ("Overview", PREFIX, frozenset({Role.CUSTODIAN, Role.AUDITOR})),
    ("Moderation", f"{PREFIX}/moderation", frozenset({Role.MODERATOR})),
    ("Oversight", f"{PREFIX}/oversight", frozenset({Role.CUSTODIAN, Role.AUDITOR, Role.OPERATOR})),
)
#: Roles with at least one console page; the others are refused at login.
CONSOLE_ROLES = frozenset().union(*(roles for _, _, roles in NAV))

#: Everything the console loads comes from its own origin: no CDN, no inline
#: script or style, and no framing (clickjacking on the Approve button).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def home_of(role: Role) -> str:
    """The first page a role may see (where login lands)."""
    for _, path, roles in NAV:
        if role in roles:
            return path
    return f"{PREFIX}/login"


def nav_for(session: Session | None) -> list[tuple[str, str]]:
    if session is None:
        return []
    return [(label, path) for label, path, roles in NAV if session.principal.role in roles]


def page(
    request: Request,
    template: str,
    session: Session | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A full HTML page with the navigation for ``session`` and the security headers."""
    values = {"session": session, "nav": nav_for(session), "path": request.url.path, **context}
    response = templates.TemplateResponse(request, template, values, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(path: str, *, anchor: str = "", **query: Any) -> RedirectResponse:
    """Post/Redirect/Get: a 303 so a reload never repeats the POST."""
    wanted = {k: v for k, v in query.items() if v is not None}
    target = f"{path}?{urlencode(wanted)}" if wanted else path
    target += f"#{anchor}" if anchor else ""
    response = RedirectResponse(target, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def utc(timestamp: float | None) -> str:
    """A unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (every party reads the same clock).

    >>> utc(0)
    '1970-01-01 00:00:00 UTC'
    """
    if timestamp is None:
        return "—"
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def short(value: Any, keep: int = 14) -> str:
    """Long keyed hashes cut for a table cell (the full value goes in a title).

    >>> short("k1:" + "ab" * 32)
    'k1:ababababab…'
    """
    text = "" if value is None else str(value)
    return text if len(text) <= keep else text[: keep - 1] + "…"


templates.env.filters["utc"] = utc
templates.env.filters["short"] = short

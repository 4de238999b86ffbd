"""Who is using the console: the API token in a cookie → a principal; CSRF tokens.

Why the API token itself: the console is for people who already hold a token
the custodian issued, so pasting it once avoids a second credential store,
and revoking the token ends the console session too. The cookie is HttpOnly
(page scripts never read it), SameSite=Strict (other sites' pages never send
it) and scoped to ``/console`` (the JSON API takes bearer tokens only).

Why CSRF tokens on top of SameSite: older browsers and same-site subdomains
do not honour it. A form's token is HMAC-SHA256 keyed with the secret in the
cookie, so it is stateless (any API replica checks it) and worthless without
the cookie; the login form, which has no session yet, uses a random nonce in
a short-lived cookie the same way.
"""

# No ``from __future__ import annotations``: FastAPI must evaluate the
# ``Annotated[..., Depends(check)]`` of a closure when ``posted`` runs.
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from trustfeed.api._auth import platform_of
from trustfeed.api._errors import status_of
from trustfeed.custody import Principal, Role
from trustfeed.errors import TrustfeedError
from trustfeed.service import Unauthenticated

PREFIX = "/console"
COOKIE = "tf_console"
LOGIN_COOKIE = "tf_console_login"
#: A console session outlives a working day at most; the token may expire sooner.
SESSION_SECONDS = 8 * 3600
LOGIN_SECONDS = 600
_CSRF_CONTEXT = b"trustfeed-console-csrf-v1:"


@dataclass(frozen=True)
class Session:
    """A signed-in person: their token's principal and the CSRF token for their forms."""

    principal: Principal
    csrf: str


class NeedLogin(Exception):
    """No valid session: the handler redirects to the login page, then back to ``next``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Refused(Exception):
    """A console request that cannot be served; rendered as an HTML error page."""

    def __init__(self, status: int, message: str, session: Session | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.session = status, message, session


def csrf_token(secret: str, purpose: str = "session") -> str:
    """The CSRF token for forms of the session (or login nonce) ``secret``.

    >>> csrf_token("tf_a") == csrf_token("tf_a") != csrf_token("tf_b")
    True
    """
    message = _CSRF_CONTEXT + purpose.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def same_token(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def current_session(request: Request) -> Session:
    """The session from the cookie; :class:`NeedLogin` without a valid token."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise NeedLogin(request.url.path)
    try:
        principal = platform_of(request).tokens.authenticate(token)
    except Unauthenticated:
        raise NeedLogin(request.url.path) from None
    return Session(principal, csrf_token(token))


SessionDep = Annotated[Session, Depends(current_session)]


def needs(*roles: Role) -> Callable[[Session], Session]:
    """A dependency admitting a session of these roles; others get a 403 page."""
    allowed = frozenset(roles)

    def check(session: SessionDep) -> Session:
        if session.principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            message = f"this page is for {names}; you are signed in as a {session.principal.role}"
            raise Refused(403, message, session)
        return session

    return check


def posted(*roles: Role) -> Callable[..., Awaitable[Session]]:
    """Like :func:`needs`, for a POST: the form's ``csrf`` field must match the session."""
    check = needs(*roles)

    async def verify(request: Request, session: Annotated[Session, Depends(check)]) -> Session:
        form = await request.form()
        given = form.get("csrf")
        if not isinstance(given, str) or not same_token(given, session.csrf):
            raise Refused(
                403, "the form's CSRF token is missing or wrong; reload the page", session
            )
        return session

    return verify


def start_session(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE, token, max_age=SESSION_SECONDS, path=PREFIX,
        httponly=True, samesite="strict", secure=secure,
    )  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")


def login_nonce() -> str:
    """A fresh random nonce for one login form (its CSRF token is derived from it)."""
    return secrets.token_urlsafe(32)


def set_login_cookie(response: Response, nonce: str, *, secure: bool) -> None:
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=LOGIN_SECONDS, path=PREFIX,
        httponly=True, samesite="strict", secure=secure,
    )  # fmt: skip


def check_login_csrf(request: Request, given: str) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE)
    return bool(nonce) and same_token(given, csrf_token(nonce or "", "login"))


@contextmanager
def problems(session: Session | None) -> Iterator[None]:
    """Turn the platform's refusals into the console's error page, with the API's status."""
    try:
        yield
    except TrustfeedError as exc:
        raise Refused(status_of(exc), str(exc), session) from exc

"""Signing in (paste an API token) and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from trustfeed.api._auth import PlatformDep
from trustfeed.api.console._render import CONSOLE_ROLES, home_of, page, redirect
from trustfeed.api.console._session import (
    COOKIE,
    PREFIX,
    Session,
    check_login_csrf,
    csrf_token,
    end_session,
    login_nonce,
    posted,
    set_login_cookie,
    start_session,
)
from trustfeed.service import Unauthenticated

router = APIRouter(prefix=PREFIX)
#: API tokens are ~64 characters; anything far longer is not one.
MAX_TOKEN = 512
FormText = Annotated[str, Form()]


def safe_next(path: str) -> str:
    """Only a console path is a place to return to after login (no open redirect).

    >>> safe_next("/console/moderation"), safe_next("//evil.example"), safe_next("/v1/x")
    ('/console/moderation', '', '')
    """
    inside = path == PREFIX or path.startswith(PREFIX + "/")
    odd = "//" in path or "\\" in path or path.startswith(f"{PREFIX}/login")
    return path if inside and not odd else ""


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(
    request: Request, *, next_path: str, error: str = "", status: int = 200
) -> Response:
    nonce = login_nonce()
    response = page(
        request, "login.html", None, status=status, error=error,
        csrf=csrf_token(nonce, "login"), next_path=safe_next(next_path),
    )  # fmt: skip
    set_login_cookie(response, nonce, secure=_secure(request))
    return response


@router.get("/login")
def login_form(request: Request, platform: PlatformDep, next: str = "") -> Response:
    """The sign-in form; someone already signed in goes to their home page."""
    token = request.cookies.get(COOKIE)
    if token:
        try:
            principal = platform.tokens.authenticate(token)
        except Unauthenticated:
            pass
        else:
            return redirect(safe_next(next) or home_of(principal.role))
    return _login_page(request, next_path=next)


@router.post("/login")
def login(
    request: Request,
    platform: PlatformDep,
    token: FormText = "",
    csrf: FormText = "",
    next: FormText = "",
) -> Response:
    """Check the pasted token and start a session for a role that has console pages."""
    if not check_login_csrf(request, csrf):
        error = "The sign-in form expired or did not come from this console. Please try again."
        return _login_page(request, next_path=next, error=error, status=403)
    token = token.strip()
    try:
        principal = platform.tokens.authenticate(token if len(token) <= MAX_TOKEN else "")
    except Unauthenticated:
        error = "That token is not valid: it is unknown, expired or revoked."
        return _login_page(request, next_path=next, error=error, status=401)
    if principal.role not in CONSOLE_ROLES:
        error = f"A {principal.role}'s token has no console pages; use the API instead."
        return _login_page(request, next_path=next, error=error, status=403)
    response = redirect(safe_next(next) or home_of(principal.role))
    start_session(response, token, secure=_secure(request))
    return response


@router.post("/logout")
def logout(session: Annotated[Session, Depends(posted(*CONSOLE_ROLES))]) -> Response:
    response = redirect(f"{PREFIX}/login", signed_out=1)
    end_session(response)
    return response

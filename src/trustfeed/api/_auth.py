"""Who is calling: the bearer token → a principal; roles checked per router."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from trustfeed.custody import Principal, Role
from trustfeed.service import Forbidden, Platform, Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="An API token issued by the custodian.")


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(platform_of)]


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The token's principal; 401 without a valid one."""
    if credentials is None:
        raise Unauthenticated("this route needs an API token: 'Authorization: Bearer tf_…'")
    principal = platform_of(request).tokens.authenticate(credentials.credentials)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only these roles (403 for the rest)."""
    allowed = frozenset(roles)

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this route is for {names}; the token is a {principal.role.value}'s")
        return principal

    return check

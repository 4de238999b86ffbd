"""The user's routes: feed, "why am I seeing this", settings, export, erasure.

A user token may act only on its own user id; the operator may fetch feeds
on the app's behalf. Every route asks the policy point, so a wrong principal
gets 403 and a deny entry in the ledger.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from trustfeed.api._auth import PlatformDep, PrincipalDep
from trustfeed.api._params import ItemId

router = APIRouter(prefix="/v1/users", tags=["user"])
UserId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    personalised: bool = Field(description="False: the non-profiling feed (DSA Art. 38).")


class Erasure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    justification: str = Field(min_length=1, max_length=500)


@router.get("/{user_id}/feed")
def feed(
    user_id: UserId,
    principal: PrincipalDep,
    platform: PlatformDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    cursor: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> dict[str, Any]:
    """The next ``k`` items of the user's feed, each with reason codes."""
    return platform.feed(principal, user_id, k=k, cursor=cursor)


@router.get("/{user_id}/feed/{item_id}/why")
def why(
    user_id: UserId, item_id: ItemId, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    """Why am I seeing this item."""
    return platform.explain(principal, user_id, item_id)


@router.put("/{user_id}/settings")
def put_settings(
    user_id: UserId, body: Settings, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    platform.set_personalised(principal, user_id, body.personalised)
    return {"user_id": user_id, "personalised": body.personalised}


@router.get("/{user_id}/export")
def export(user_id: UserId, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    """Everything held about the user, as one JSON bundle."""
    return platform.export_user(principal, user_id)


@router.post("/{user_id}/erase")
def erase(
    user_id: UserId, body: Erasure, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    """Crypto-shred the user's data and remove them from the model's user state."""
    return platform.erase_user(principal, user_id, body.justification)

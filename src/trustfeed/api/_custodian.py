"""The custodian's routes: API tokens, just-in-time grants and approvals, policy versions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from trustfeed.api._auth import PlatformDep, require
from trustfeed.custody import Action, DataClass, Principal, Role

router = APIRouter(prefix="/v1/custodian", tags=["custodian"])
Custodian = Annotated[Principal, Depends(require(Role.CUSTODIAN))]
PrincipalId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")]
Jurisdiction = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal: PrincipalId
    role: Role
    jurisdiction: Jurisdiction
    label: str = Field(min_length=1, max_length=200)
    expires_in: float | None = Field(None, gt=0, le=400 * 86400)


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grantee: PrincipalId
    grantee_role: Role
    grantee_jurisdiction: Jurisdiction
    actions: list[Action] = Field(min_length=1)
    data_classes: list[DataClass] = Field(min_length=1)
    purpose: str = Field(min_length=1, max_length=100)
    expires_in: float = Field(gt=0, le=30 * 86400)
    owner: PrincipalId | None = None
    allow_transfer: bool = False
    justification: str = Field(min_length=1, max_length=1000)


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=200_000, description="The Cedar policy set.")


def grant_dict(grant: Any, now: float) -> dict[str, Any]:
    out = asdict(grant)
    out["actions"] = sorted(a.value for a in grant.actions)
    out["data_classes"] = sorted(d.value for d in grant.data_classes)
    out["status"] = grant.status(now).value
    return out


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def issue_token(body: TokenIn, principal: Custodian, platform: PlatformDep) -> dict[str, Any]:
    """Issue a token; its secret is in this response only."""
    who = Principal(body.principal, body.role, body.jurisdiction)
    secret, info = platform.tokens.issue(
        who, label=body.label, issued_by=principal.id, expires_in=body.expires_in
    )
    return {"token": secret, **info.to_dict()}


@router.get("/tokens")
def list_tokens(principal: Custodian, platform: PlatformDep) -> list[dict[str, Any]]:
    return [t.to_dict() for t in platform.tokens.list()]


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: str, principal: Custodian, platform: PlatformDep) -> dict[str, Any]:
    return platform.tokens.revoke(token_id).to_dict()


@router.get("/grants")
def list_grants(principal: Custodian, platform: PlatformDep) -> list[dict[str, Any]]:
    grants = platform.custody.policy.grants
    now = grants.now()
    return [grant_dict(g, now) for g in grants.all()]


@router.post("/grants", status_code=status.HTTP_201_CREATED)
def request_grant(body: GrantIn, principal: Custodian, platform: PlatformDep) -> dict[str, Any]:
    """Request a just-in-time grant; it takes effect after two other custodians approve."""
    grants = platform.custody.policy.grants
    grant = grants.request(
        grantee=Principal(body.grantee, body.grantee_role, body.grantee_jurisdiction),
        actions=body.actions, data_classes=body.data_classes, purpose=body.purpose,
        expires_in=body.expires_in, requested_by=principal, owner=body.owner,
        allow_transfer=body.allow_transfer, justification=body.justification,
    )  # fmt: skip
    return grant_dict(grant, grants.now())


@router.post("/grants/{grant_id}/approve")
def approve_grant(grant_id: str, principal: Custodian, platform: PlatformDep) -> dict[str, Any]:
    grants = platform.custody.policy.grants
    return grant_dict(grants.approve(grant_id, principal), grants.now())


@router.post("/grants/{grant_id}/revoke")
def revoke_grant(
    grant_id: str, body: RevokeIn, principal: Custodian, platform: PlatformDep
) -> dict[str, Any]:
    grants = platform.custody.policy.grants
    return grant_dict(grants.revoke(grant_id, principal, reason=body.reason), grants.now())


@router.get("/policy")
def policy_versions(principal: Custodian, platform: PlatformDep) -> dict[str, Any]:
    """The active policy set and every earlier version."""
    policy = platform.custody.policy
    history = [asdict(v) for v in policy.versions.history()]
    return {"active": asdict(policy.version), "history": history}


@router.post("/policy", status_code=status.HTTP_201_CREATED)
def activate_policy(body: PolicyIn, principal: Custodian, platform: PlatformDep) -> dict:
    """Validate and activate a new policy set (recorded in the ledger)."""
    return asdict(platform.custody.policy.activate(body.text, principal))

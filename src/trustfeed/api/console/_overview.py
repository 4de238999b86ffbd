"""The custodian's and auditor's overview: the ledger, its checkpoint, decisions, grants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from trustfeed.api._auth import PlatformDep
from trustfeed.api.console._ledger_view import (
    DecisionFilter,
    checkpoint_status,
    recent_decisions,
)
from trustfeed.api.console._render import page, redirect
from trustfeed.api.console._session import PREFIX, Refused, Session, needs, posted, problems
from trustfeed.custody import DataClass, Principal, Role
from trustfeed.custody.policy import Grant, GrantStatus
from trustfeed.service import Platform

router = APIRouter(prefix=PREFIX)
Reader = Annotated[Session, Depends(needs(Role.CUSTODIAN, Role.AUDITOR))]
Custodian = Annotated[Session, Depends(posted(Role.CUSTODIAN))]
FilterText = Annotated[str, Query(max_length=100)]
GrantId = Annotated[str, Path(max_length=64)]
_GRANT_ID = re.compile(r"^g-[0-9a-f]{1,32}$")
_PURPOSE = re.compile(r"^[a-z0-9_]{0,100}$")
DECISIONS = ("allow", "deny")
PAGE = 25
TRANSFERS_SHOWN = 10


@dataclass(frozen=True)
class PendingGrant:
    """A grant awaiting approval and whether the viewer may approve it (if not, why)."""

    grant: Grant
    why_not: str

    @property
    def can_approve(self) -> bool:
        return not self.why_not


def why_not_approve(grant: Grant, who: Principal) -> str:
    """Empty if ``who`` may approve ``grant`` here; else the reason, for the page.

    Four eyes: the requester's own approval would let one custodian and one
    accomplice open data, so the console asks for two custodians besides the
    requester (the grant store itself refuses grantees and repeat approvals).
    """
    if who.role is not Role.CUSTODIAN:
        return "only custodians approve grants"
    if who.id == grant.requested_by:
        return "you requested it: two other custodians approve it"
    if who.id == grant.grantee_id:
        return "the grant is to you"
    if who.id in grant.approvals:
        return "you have approved it"
    return ""


def pending_grants(platform: Platform, who: Principal) -> list[PendingGrant]:
    grants = platform.custody.policy.grants
    now = grants.now()
    waiting = [g for g in grants.all() if g.status(now) is GrantStatus.PENDING]
    return [PendingGrant(g, why_not_approve(g, who)) for g in waiting]


def decision_filter(
    platform: Platform, *, decision: str, role: str, data_class: str, purpose: str, transfers: str
) -> DecisionFilter:
    """The page's filter form as a :class:`DecisionFilter`; a value no form offers is a 400."""
    checks = (
        ("decision", decision, DECISIONS),
        ("role", role, tuple(r.value for r in Role)),
        ("data class", data_class, tuple(d.value for d in DataClass)),
    )
    for label, value, allowed in checks:
        if value and value not in allowed:
            raise Refused(400, f"unknown {label} {value!r} (one of: {', '.join(allowed)})")
    if not _PURPOSE.match(purpose):
        raise Refused(400, "a purpose is lower-case letters, digits and underscores")
    return DecisionFilter(
        decision or None, role or None, data_class or None, purpose or None,
        transfers=bool(transfers), domestic=platform.config.domestic,
    )  # fmt: skip


@router.get("")
def overview(
    request: Request,
    session: Reader,
    platform: PlatformDep,
    decision: FilterText = "",
    role: FilterText = "",
    data_class: FilterText = "",
    purpose: FilterText = "",
    transfers: FilterText = "",
    before: Annotated[int | None, Query(ge=0)] = None,
    approved: FilterText = "",
    signed: FilterText = "",
) -> Response:
    """Ledger, checkpoint, grants awaiting approval, denied transfers, recent decisions."""
    wanted = decision_filter(
        platform, decision=decision, role=role, data_class=data_class,
        purpose=purpose, transfers=transfers,
    )  # fmt: skip
    ledger = platform.custody.ledger
    domestic = platform.config.domestic
    denied = DecisionFilter("deny", transfers=True, domestic=domestic)
    return page(
        request, "overview.html", session,
        checkpoint=checkpoint_status(
            ledger, platform.config.ledger_key.with_suffix(".pub"), platform.config.origin
        ),
        grants=pending_grants(platform, session.principal),
        transfers=recent_decisions(ledger, denied, limit=TRANSFERS_SHOWN),
        transfers_query=denied.query(),
        decisions=recent_decisions(ledger, wanted, before=before, limit=PAGE),
        wanted=wanted, domestic=domestic,
        choices={"decision": DECISIONS, "role": [r.value for r in Role],
                 "data_class": [d.value for d in DataClass]},
        approved=approved if _GRANT_ID.match(approved) else "",
        signed=bool(signed),
    )  # fmt: skip


@router.post("/grants/{grant_id}/approve")
def approve(grant_id: GrantId, session: Custodian, platform: PlatformDep) -> Response:
    """One custodian's approval; the grant takes effect at the second."""
    grants = platform.custody.policy.grants
    with problems(session):
        reason = why_not_approve(grants.get(grant_id), session.principal)
        if reason:
            raise Refused(409, f"you cannot approve {grant_id}: {reason}", session)
        grants.approve(grant_id, session.principal)
    return redirect(PREFIX, approved=grant_id, anchor="grants")


@router.post("/checkpoint")
def sign_checkpoint(session: Custodian, platform: PlatformDep) -> Response:
    """Sign the ledger's current size and root (custodians hold the ledger key)."""
    with problems(session):
        platform.custody.ledger.checkpoint()
    return redirect(PREFIX, signed=1)

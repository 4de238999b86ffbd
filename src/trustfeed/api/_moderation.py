"""Moderators' routes: the review queue, media reveal, decisions, appeals; and filing appeals.

Moderators act under their token's principal id; each decision cites a policy
of the documented taxonomy and goes through the gate (and into the ledger).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from trustfeed.api._auth import PlatformDep, require
from trustfeed.api._params import ItemId, RowId
from trustfeed.custody import Principal, Role
from trustfeed.moderation import Outcome, Status
from trustfeed.moderation._metrics import overturn_rate, time_in_queue
from trustfeed.service import Forbidden, NotFound

router = APIRouter(prefix="/v1", tags=["moderation"])
Moderator = Annotated[Principal, Depends(require(Role.MODERATOR))]
Appellant = Annotated[Principal, Depends(require(Role.USER, Role.OPERATOR))]
QueueName = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9-]+$")]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Status = Field(description="The item's new status.")
    policy_id: str = Field(min_length=1, max_length=64, description="A taxonomy policy id.")
    note: str = Field("", max_length=2000)


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: int = Field(ge=0, lt=2**62)
    statement: str = Field(min_length=1, max_length=2000)


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    note: str = Field("", max_length=2000)


def _job(job: Any) -> dict[str, Any]:
    return asdict(job)


def _view(view: Any) -> dict[str, Any]:
    return {"job": asdict(view.job), "media": [asdict(m) for m in view.media]}


@router.get("/moderation/queue")
def queue(
    principal: Moderator,
    platform: PlatformDep,
    name: QueueName = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Jobs open for claiming, most urgent first."""
    return [_job(j) for j in platform.review.pending(limit, queue=name)]


@router.post("/moderation/jobs/next")
def claim_next(principal: Moderator, platform: PlatformDep, name: QueueName = None) -> Any:
    """Claim the most urgent job (an exclusive lease); 204 when the queue is empty."""
    view = platform.review.claim_next(principal.id, queue=name)
    return Response(status_code=204) if view is None else _view(view)


@router.post("/moderation/jobs/{job_id}/claim")
def claim(job_id: RowId, principal: Moderator, platform: PlatformDep) -> dict[str, Any]:
    return _view(platform.review.claim(job_id, principal.id))


@router.post("/moderation/jobs/{job_id}/release")
def release(job_id: RowId, principal: Moderator, platform: PlatformDep) -> dict[str, Any]:
    platform.review.release(job_id, principal.id)
    return _job(platform.review.job(job_id))


@router.post("/moderation/jobs/{job_id}/reveal/{item_id}")
def reveal(job_id: RowId, item_id: ItemId, principal: Moderator, platform: PlatformDep) -> dict:
    """Unblur one item for the lease holder (recorded in the ledger)."""
    return asdict(platform.review.reveal(job_id, item_id, principal.id))


#: Served as uploaded; any other type the uploader claimed is served as opaque bytes,
#: so an upload that says ``text/html`` never runs as a page on the API's origin.
MEDIA_TYPES = ("image/", "video/")
MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


@router.get(
    "/moderation/items/{item_id}/media",
    response_class=Response,
    responses={200: {
        "description": "The uploaded bytes.",
        "content": {"image/*": {}, "video/*": {}, "application/octet-stream": {}},
    }},
)  # fmt: skip
def media(item_id: ItemId, principal: Moderator, platform: PlatformDep) -> Response:
    """The uploaded media (the console shows it blurred until revealed)."""
    item = platform.catalog.get(item_id)
    body = platform.media(item_id)
    media_type = item.media_type if item.media_type.startswith(MEDIA_TYPES) else None
    return Response(
        body, media_type=media_type or "application/octet-stream", headers=MEDIA_HEADERS
    )


@router.post("/moderation/jobs/{job_id}/decision")
def decide(
    job_id: RowId, body: DecisionIn, principal: Moderator, platform: PlatformDep
) -> dict[str, Any]:
    decision = platform.review.decide(
        job_id, moderator=principal.id, action=body.action,
        policy_id=body.policy_id, note=body.note,
    )  # fmt: skip
    platform.sync_eligibility()
    return asdict(decision)


@router.get("/moderation/policies")
def policies(principal: Moderator, platform: PlatformDep) -> list[dict[str, Any]]:
    """The taxonomy every decision cites."""
    return [asdict(p) for p in platform.taxonomy.policies()]


@router.get("/moderation/appeals")
def open_appeals(principal: Moderator, platform: PlatformDep) -> list[dict[str, Any]]:
    return [asdict(a) for a in platform.appeals.open_appeals()]


@router.post("/moderation/appeals/{appeal_id}/assign")
def assign(appeal_id: RowId, principal: Moderator, platform: PlatformDep) -> dict[str, Any]:
    """Take an appeal (refused to the moderator who made the decision)."""
    return asdict(platform.appeals.assign(appeal_id, principal.id))


@router.post("/moderation/appeals/{appeal_id}/resolve")
def resolve(
    appeal_id: RowId, body: ResolutionIn, principal: Moderator, platform: PlatformDep
) -> dict[str, Any]:
    """Uphold or overturn; an overturn makes the item eligible (and servable) again."""
    appeal = platform.appeals.resolve(
        appeal_id, moderator=principal.id, outcome=body.outcome, note=body.note
    )
    platform.sync_eligibility()
    return asdict(appeal)


@router.get("/moderation/metrics")
def metrics(principal: Moderator, platform: PlatformDep) -> dict[str, Any]:
    """Overturn rate and time in queue."""
    engine = platform.moderation_engine
    return {
        "overturn_rate": asdict(overturn_rate(engine)),
        "time_in_queue": asdict(time_in_queue(engine)),
    }


@router.post("/appeals", status_code=201)
def file_appeal(body: AppealIn, principal: Appellant, platform: PlatformDep) -> dict[str, Any]:
    """A creator appeals a restriction of their own upload (or the operator on their behalf)."""
    uploader = platform.moderation.gate.uploader(body.item_id)
    if uploader is None:
        raise NotFound(f"no uploaded item {body.item_id}")
    if principal.role is Role.USER and uploader != principal.id:
        raise Forbidden("only the item's creator may appeal its restriction")
    appeal = platform.appeals.file(body.item_id, appellant=uploader, statement=body.statement)
    return asdict(appeal)

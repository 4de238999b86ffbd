"""The operator's routes: event ingest and uploads (the app's backend calls these)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile, status

from trustfeed.api._auth import PlatformDep, PrincipalDep, require
from trustfeed.api._params import ItemId
from trustfeed.custody import Principal, Role
from trustfeed.service import EventBatch, ServiceError

router = APIRouter(prefix="/v1", tags=["operator"])
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
MAX_UPLOAD = 50 * 1024 * 1024


@router.post("/events", status_code=status.HTTP_202_ACCEPTED)
def ingest(batch: EventBatch, principal: Operator, platform: PlatformDep) -> dict[str, int]:
    """Accept a batch once it is durable in the event log (202); retries are deduplicated."""
    result = platform.ingest(principal, batch.events)
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "last_offset": result.last_offset,
    }


@router.post("/items", status_code=status.HTTP_201_CREATED)
def upload(
    principal: PrincipalDep,
    platform: PlatformDep,
    file: Annotated[UploadFile, File(description="The video or image.")],
    item_id: Annotated[int, Form(ge=0, lt=2**62)],
    creator_id: Annotated[str, Form(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")],
    topic: Annotated[str, Form(min_length=1, max_length=64)],
    duration_ms: Annotated[int, Form(gt=0, le=86_400_000)],
    caption: Annotated[str, Form(max_length=2200)] = "",
) -> dict[str, Any]:
    """Upload media + caption; content security decides its status before this returns."""
    media = file.file.read(MAX_UPLOAD + 1)
    if len(media) > MAX_UPLOAD:
        raise ServiceError(f"uploads are limited to {MAX_UPLOAD // 2**20} MiB")
    result = platform.upload(
        principal, item_id=item_id, media=media,
        media_type=file.content_type or "application/octet-stream",
        caption=caption, creator_id=creator_id, topic=topic, duration_ms=duration_ms,
    )  # fmt: skip
    return {"item_id": item_id, "status": result.value}


@router.get("/items/{item_id}")
def item_status(item_id: ItemId, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    """An item's public metadata, its status and the decisions that led there."""
    item = platform.catalog.get(item_id)
    gate = platform.moderation.gate
    history = [
        {"to": tr.to_status.value, "reason": tr.reason, "actor": tr.actor, "at": tr.at}
        for tr in gate.history(item_id)
    ]
    return item.to_dict() | {"status": gate.status(item_id).value, "history": history}

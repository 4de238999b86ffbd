"""Moderators' pages: the queues, a review with media blurred by default, appeals.

Reviewer wellness is the reason for the blur: media stays blurred until the
moderator presses Reveal, which the review queue records in the ledger
(with the job and the moderator) before the page unblurs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import JSONResponse

from trustfeed.api._auth import PlatformDep
from trustfeed.api._params import ItemId, RowId
from trustfeed.api.console import _queues
from trustfeed.api.console._render import SECURITY_HEADERS, page, redirect
from trustfeed.api.console._session import PREFIX, Refused, Session, needs, posted, problems
from trustfeed.custody import Role
from trustfeed.errors import TrustfeedError
from trustfeed.moderation import Appeal, Outcome, Status
from trustfeed.service import CatalogItem, NotFound, Platform

router = APIRouter(prefix=f"{PREFIX}/moderation")
Moderator = Annotated[Session, Depends(needs(Role.MODERATOR))]
Acting = Annotated[Session, Depends(posted(Role.MODERATOR))]
QueueName = Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9-]*$")]
FormText = Annotated[str, Form(max_length=2000)]
HOME = f"{PREFIX}/moderation"
#: Decided statuses a moderator can choose (``pending`` is only ever an upload's start).
ACTIONS = tuple(s for s in Status if s is not Status.PENDING)
#: Only media types a browser renders as media are served as such; anything else is
#: sent as opaque bytes, so an upload can never run as a page of the console.
MEDIA_TYPES = ("image/", "video/")


@dataclass(frozen=True)
class ItemView:
    """One item of a job as the review page shows it."""

    item_id: int
    item: CatalogItem | None
    status: str
    revealed: bool

    @property
    def kind(self) -> str:
        media_type = self.item.media_type if self.item else ""
        return "video" if media_type.startswith("video/") else "image"


@dataclass(frozen=True)
class AppealView:
    appeal: Appeal
    item: CatalogItem | None
    status: str


def _catalogued(platform: Platform, item_id: int) -> CatalogItem | None:
    try:
        return platform.catalog.get(item_id)
    except NotFound:
        return None


def _status(platform: Platform, item_id: int) -> str:
    try:
        return str(platform.moderation.gate.status(item_id))
    except TrustfeedError:  # an item the gate never saw: say so rather than fail the page
        return "unknown"


@router.get("")
def queue_page(
    request: Request,
    session: Moderator,
    platform: PlatformDep,
    queue: QueueName = "",
    notice: Annotated[str, Query(max_length=32, pattern=r"^[a-z-]*$")] = "",
    job: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """Queues with their open counts, my held jobs, jobs to claim, open appeals."""
    engine, me = platform.moderation_engine, session.principal.id
    appeals = [
        AppealView(a, _catalogued(platform, a.item_id), _status(platform, a.item_id))
        for a in platform.appeals.open_appeals()
    ]
    return page(
        request, "moderation.html", session,
        queues=_queues.queue_counts(engine), queue=queue,
        held=_queues.held_by(engine, platform.review, me),
        pending=platform.review.pending(50, queue=queue or None),
        appeals=appeals, me=f"moderator:{me}", notice=notice, notice_job=job,
    )  # fmt: skip


@router.post("/claim-next")
def claim_next(session: Acting, platform: PlatformDep, queue: FormText = "") -> Response:
    """Claim the most urgent job of the queue (or of every queue)."""
    with problems(session):
        view = platform.review.claim_next(session.principal.id, queue=queue or None)
    if view is None:
        return redirect(HOME, queue=queue or None, notice="empty")
    return redirect(f"{HOME}/jobs/{view.job.id}")


@router.post("/jobs/{job_id}/claim")
def claim(job_id: RowId, session: Acting, platform: PlatformDep) -> Response:
    with problems(session):
        platform.review.claim(job_id, session.principal.id)
    return redirect(f"{HOME}/jobs/{job_id}")


@router.post("/jobs/{job_id}/release")
def release(job_id: RowId, session: Acting, platform: PlatformDep) -> Response:
    with problems(session):
        platform.review.release(job_id, session.principal.id)
    return redirect(HOME, notice="released", job=job_id)


@router.get("/jobs/{job_id}")
def review_page(
    request: Request, job_id: RowId, session: Moderator, platform: PlatformDep
) -> Response:
    """The review of a job the moderator holds: blurred media, the decision form."""
    me = session.principal.id
    with problems(session):
        job = platform.review.job(job_id)
    if not _queues.holds(job, me):
        message = f"review job {job_id} is not claimed by you: claim it from the queue first"
        raise Refused(409, message, session)
    shown = _queues.revealed(platform.moderation_engine, job_id, me)
    items = [
        ItemView(i, _catalogued(platform, i), _status(platform, i), i in shown) for i in job.items
    ]
    return page(
        request, "job.html", session, job=job, items=items,
        policies=platform.taxonomy.policies(), actions=ACTIONS,
    )  # fmt: skip


@router.post("/jobs/{job_id}/reveal/{item_id}")
def reveal(
    request: Request, job_id: RowId, item_id: ItemId, session: Acting, platform: PlatformDep
) -> Response:
    """Unblur one item (recorded in the ledger); JSON for the page's script, else a redirect."""
    with problems(session):
        platform.review.reveal(job_id, item_id, session.principal.id)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"item_id": item_id, "blurred": False}, headers=SECURITY_HEADERS)
    return redirect(f"{HOME}/jobs/{job_id}", anchor=f"item-{item_id}")


@router.post("/jobs/{job_id}/decision")
def decide(
    job_id: RowId,
    session: Acting,
    platform: PlatformDep,
    action: FormText = "",
    policy_id: FormText = "",
    note: FormText = "",
) -> Response:
    """Record the decision (through the gate, into the ledger) for every item of the job."""
    if action not in {str(s) for s in ACTIONS}:
        raise Refused(400, f"choose an action: one of {', '.join(ACTIONS)}", session)
    with problems(session):
        platform.review.decide(
            job_id, moderator=session.principal.id, action=Status(action),
            policy_id=policy_id, note=note.strip(),
        )  # fmt: skip
    platform.sync_eligibility()
    return redirect(HOME, notice="decided", job=job_id)


@router.get("/items/{item_id}/media")
def media(item_id: ItemId, session: Moderator, platform: PlatformDep) -> Response:
    """The uploaded bytes; the page blurs them until revealed."""
    with problems(session):
        item = platform.catalog.get(item_id)
        body = platform.media(item_id)
    media_type = item.media_type if item.media_type.startswith(MEDIA_TYPES) else None
    headers = SECURITY_HEADERS | {"Content-Security-Policy": "sandbox; default-src 'none'"}
    return Response(body, media_type=media_type or "application/octet-stream", headers=headers)


@router.post("/appeals/{appeal_id}/assign")
def assign(appeal_id: RowId, session: Acting, platform: PlatformDep) -> Response:
    """Take an appeal (refused to the moderator whose decision it appeals)."""
    with problems(session):
        platform.appeals.assign(appeal_id, session.principal.id)
    return redirect(HOME, notice="assigned", anchor="appeals")


@router.post("/appeals/{appeal_id}/resolve")
def resolve(
    appeal_id: RowId,
    session: Acting,
    platform: PlatformDep,
    outcome: FormText = "",
    note: FormText = "",
) -> Response:
    """Uphold or overturn; an overturn makes the item eligible again."""
    if outcome not in {str(o) for o in Outcome}:
        raise Refused(400, "choose an outcome: upheld or overturned", session)
    with problems(session):
        platform.appeals.resolve(
            appeal_id, moderator=session.principal.id, outcome=Outcome(outcome), note=note.strip()
        )
    platform.sync_eligibility()
    return redirect(HOME, notice=f"appeal-{outcome}", anchor="appeals")

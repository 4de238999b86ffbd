"""Every error the platform raises on purpose becomes a 4xx with a clear message."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from trustfeed.custody import AccessDenied
from trustfeed.errors import TrustfeedError
from trustfeed.moderation import IllegalTransition, UnknownItem
from trustfeed.moderation._workflow_errors import AppealRefused, JobClosed, LeaseRefused, UnknownJob
from trustfeed.service import Conflict, Forbidden, NotFound, Unauthenticated

#: Most specific first; anything else trustfeed raises is the caller's bad input (400).
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (AccessDenied, 403),
    (NotFound, 404),
    (UnknownItem, 404),
    (UnknownJob, 404),
    (Conflict, 409),
    (IllegalTransition, 409),
    (JobClosed, 409),
    (LeaseRefused, 409),
    (AppealRefused, 409),
)


def status_of(exc: Exception) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def install(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    app.add_exception_handler(TrustfeedError, handle)

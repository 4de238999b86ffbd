"""``/healthz`` and ``/metrics`` (Prometheus text format); both open, and free of personal data."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from trustfeed.api._auth import PlatformDep

router = APIRouter(tags=["ops"])


class Metrics:
    """One registry per app, so several apps (tests) never share counters."""

    def __init__(self, platform: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "trustfeed_http_requests", "HTTP requests by route and status",
            ["route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "trustfeed_http_request_seconds", "HTTP latency by route", ["route"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )  # fmt: skip
        log, trainer, archiver = platform.log, platform.trainer, platform.archiver
        gauges = {
            "trustfeed_log_offset": ("last offset in the event log", log.last_offset),
            "trustfeed_model_lag_events": (
                "log events not yet in the model",
                lambda: log.last_offset() - trainer.position,
            ),
            "trustfeed_vault_lag_events": (
                "log events not yet in the vault",
                lambda: log.last_offset() - archiver.position,
            ),
            "trustfeed_ledger_size": ("audit ledger entries", platform.custody.ledger.size),
            "trustfeed_catalog_items": ("uploaded items", lambda: len(platform.catalog)),
            "trustfeed_events_trained": ("events trained on", lambda: trainer.applied),
        }
        for name, (doc, read) in gauges.items():
            Gauge(name, doc, registry=self.registry).set_function(read)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.requests.labels(path, str(response.status_code)).inc()
        self.latency.labels(path).observe(time.perf_counter() - start)
        return response


@router.get("/healthz")
def healthz(platform: PlatformDep) -> JSONResponse:
    """Liveness and pipeline positions; 503 when a background step keeps failing."""
    health = platform.health()
    return JSONResponse(health, status_code=200 if health["status"] == "ok" else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


def install(app: FastAPI, platform: Any) -> None:
    app.state.metrics = Metrics(platform)
    app.middleware("http")(app.state.metrics.middleware)

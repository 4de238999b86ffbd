"""The platform part of the demo: upload, screen, ingest, train online, serve, audit.

Everything goes through :class:`trustfeed.service.Platform`, the same path the
HTTP API takes: uploads are screened by content security; events are
appended durably to the local log, sealed into the vault and pseudonymised
for the live model; feeds are served with their reasons under the policy
point; the ledger is checkpointed and verified at the end.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress

from trustfeed.custody import Principal, Role
from trustfeed.demo._media import BAD_BANK, altered, cover, pdq_of
from trustfeed.moderation import Status
from trustfeed.service import Event, Platform, PlatformConfig
from trustfeed.service._bulk import PrescoredClassifier, Upload, import_catalog, prescored

BATCH = 1000
STREAM_BATCH = 200  # online: events arrive a few hundred at a time
N_KNOWN_BAD = 12
MIN_QUALITY = 50  # PDQ hashes below this are never matched
OFFENSIVE_CAPTIONS = ("you stupid bitch", "fuck all of you idiots", "shut up you dumb ass")
DEFAULT_DURATION_MS = 30_000


@dataclass
class RunReport:
    """What the demo measured on the platform."""

    uploads_s: float = 0.0
    ingest_events_per_s: float = 0.0
    end_to_end_events_per_s: float = 0.0
    freshness_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    blocked_reasons: Counter[str] = field(default_factory=Counter)


def user_key(user: object) -> str:
    """The app's user id for a world (or dataset) user: ids are strings at the API."""
    return f"u{user}"


class PlatformModel:
    """The live model seen from outside the boundary: raw ids in, public item ids out.

    Lets the offline evaluation score exactly what the platform serves.
    """

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    def recommend(self, user_ids: Any, k: int = 20, exclude_seen: bool = True) -> np.ndarray:
        p = self._platform
        pseudonyms = [p.custody.pseudonyms.user(user_key(u)) for u in np.atleast_1d(user_ids)]
        with p.model_lock:
            rows = p.model.recommend(pseudonyms, k=k, exclude_seen=exclude_seen)
        mapped = p.catalog.item_ids(rows.ravel())
        return np.array([-1 if i is None else i for i in mapped], np.int64).reshape(rows.shape)


def open_fresh(
    home: Path, seed: int, *, text_models: bool
) -> tuple[Platform, list[PrescoredClassifier]]:
    """A new deployment under ``home`` (anything there from an earlier demo is replaced)."""
    if home.exists():
        shutil.rmtree(home)
    config = PlatformConfig(
        home=home, store_url=f"sqlite:///{home / 'custody.db'}", log_url=str(home / "log"),
        moderation_url=f"sqlite:///{home / 'moderation.db'}", domestic="US",
        keyfile=home / "keys" / "custodian.json", ledger_key=home / "keys" / "ledger.key",
        origin="demo.trustfeed.local/ledger", seed=seed, refresh_every_s=5.0,
    )  # fmt: skip
    from trustfeed.moderation.text import default_classifiers

    # Pre-scored: the bulk import scores a chunk's captions in one call per model.
    scorers = prescored(default_classifiers(embeddings=text_models))
    return Platform.open(config, text_classifiers=scorers), scorers


def operator(platform: Platform) -> Principal:
    return Principal("demo-app-backend", Role.OPERATOR, platform.config.domestic)


def upload_catalogue(
    console: Console,
    platform: Platform,
    scorers: list[PrescoredClassifier],
    items: pd.DataFrame,
    seed: int,
    report: RunReport,
) -> None:
    """Seed the known-bad bank, then upload every video through content security."""
    rng = np.random.default_rng(seed)
    ids = items["item_id"].to_numpy(np.int64)
    bad = _known_bad(rng.permutation(ids).tolist(), min(N_KNOWN_BAD, len(ids) // 10))
    clean = sorted(set(ids.tolist()) - bad)
    offensive = dict(zip(rng.choice(clean, size=len(OFFENSIVE_CAPTIONS), replace=False).tolist(),
                         OFFENSIVE_CAPTIONS, strict=True))  # fmt: skip
    platform.moderation.banks.create(BAD_BANK, action=Status.REMOVED)
    for item in sorted(bad):
        platform.moderation.banks.add(
            BAD_BANK, "pdq", pdq_of(cover(item))[0], note="demo: known bad"
        )
    altered_ones = set(sorted(bad)[::2])  # half arrive as near-duplicates

    def media_for(upload: Upload) -> bytes:
        item = upload.item_id
        return altered(item) if item in altered_ones else cover(item)

    rows: Any = items.itertuples(index=False)  # named tuples of the catalogue's columns
    uploads = [
        Upload(
            int(row.item_id), f"creator-{row.creator_id}", str(row.topic),
            int(getattr(row, "duration_ms", DEFAULT_DURATION_MS)),
            caption=offensive.get(int(row.item_id), f"video {row.item_id} about {row.topic}"),
            media_type="image/jpeg" if int(row.item_id) in altered_ones else "image/png",
        )
        for row in rows
    ]  # fmt: skip
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("uploading and screening", total=len(uploads))
        statuses = import_catalog(
            platform, operator(platform), uploads, media_for, scorers=scorers,
            chunk=200, progress=lambda done: progress.update(task, completed=done),
        )  # fmt: skip
    report.uploads_s = time.perf_counter() - started
    report.statuses.update({status.value: n for status, n in statuses.items()})
    for item in platform.moderation.gate.items_with_status(
        [s for s in Status if s not in (Status.ELIGIBLE, Status.PENDING)]
    ):
        report.blocked_reasons[_short(platform.moderation.gate.history(item)[-1].reason)] += 1


def _known_bad(candidates: list[int], n: int) -> set[int]:
    """``n`` items whose covers (and near-duplicates) hash with PDQ quality ≥ 50.

    Why: a hash below quality 50 is never matched (the issue's rule), so a bank
    entry for one would catch nothing; a real bank would not list it either.
    """
    chosen: set[int] = set()
    for item in candidates:
        if len(chosen) == n:
            break
        if min(pdq_of(cover(item))[1], pdq_of(altered(item))[1]) >= MIN_QUALITY:
            chosen.add(item)
    return chosen


def _short(reason: str) -> str:
    """A reason as the report groups it: per bank or rule, not per bank entry."""
    reason = re.sub(r" entry \d+ \((\w+), distance \d+\)", r" (\1 match)", reason)
    return reason if len(reason) <= 70 else reason[:67] + "…"


def events_of(frame: pd.DataFrame, prefix: str) -> list[Event]:
    """The world's rows as app events (the row's position makes the idempotency key)."""
    out, rows = [], frame.itertuples(index=False)
    row: Any
    for n, row in enumerate(rows):
        fields: dict[str, Any] = {
            "idempotency_key": f"{prefix}-{n:09d}", "user_id": user_key(row.user_id),
            "item_id": int(row.item_id), "event": str(getattr(row, "event", "view")),
            "timestamp": float(row.timestamp),
        }  # fmt: skip
        for column in ("watch_ms", "duration_ms"):
            value = getattr(row, column, None)
            if value is not None and not pd.isna(value):
                fields[column] = int(value)
        out.append(Event(**fields))
    return out


def ingest(
    console: Console, platform: Platform, frame: pd.DataFrame, prefix: str, report: RunReport
) -> None:
    """Append every event durably (as the API does), then let the pipeline catch up."""
    events, who = events_of(frame, prefix), operator(platform)
    started, appended = time.perf_counter(), 0.0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"ingesting {prefix}", total=len(events))
        for start in range(0, len(events), BATCH):
            batch = events[start : start + BATCH]
            t0 = time.perf_counter()
            platform.ingest(who, batch)
            appended += time.perf_counter() - t0
            progress.advance(task, len(batch))
        platform.drain(timeout=600)
    report.ingest_events_per_s = len(events) / max(appended, 1e-9)
    report.end_to_end_events_per_s = len(events) / max(time.perf_counter() - started, 1e-9)


def stream_with_freshness(
    console: Console, platform: Platform, frame: pd.DataFrame, report: RunReport
) -> None:
    """Online: each batch is ingested and the time until the model serves it is measured."""
    events, who = events_of(frame, "stream"), operator(platform)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("streaming online", total=len(events))
        for start in range(0, len(events), STREAM_BATCH):
            batch = events[start : start + STREAM_BATCH]
            t0 = time.perf_counter()
            result = platform.ingest(who, batch)
            while platform.trainer.position < result.last_offset:
                platform.trainer.step()
            report.freshness_ms.append((time.perf_counter() - t0) * 1000)
            platform.pump()  # the vault's share, outside the freshness clock
            progress.advance(task, len(batch))
    platform.drain(timeout=600)


def verify_checkpoint(platform: Platform) -> tuple[int, str]:
    """Sign a checkpoint and audit the whole store as an auditor would (raises if it fails)."""
    from trustfeed.custody.ledger._verify import audit_store

    platform.custody.ledger.checkpoint()
    public_key = platform.config.ledger_key.with_suffix(".pub").read_text(encoding="utf-8")
    report = audit_store(platform.config.store_url, [public_key.strip()])
    return report.entries, ", ".join(report.signed_by)

"""Step 1 of ``benchmarks/load.py``: a home with a screened catalogue and a trained model.

The catalogue goes through :func:`trustfeed.service.import_catalog` (every item
screened by the moderation pipeline ``trustfeed serve`` runs, caption models
included); the world's events go through :meth:`Platform.ingest` in batches of
1,000 and are drained, so the model learns from the pseudonymised stream as it
does in service; closing the platform snapshots the model.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

MARKER = "load.json"
console = Console(width=160)


def prepare(
    home: Path, *, items: int, users: int, creators: int, events: int, seed: int,
    stage: Path | None = None,
) -> None:  # fmt: skip
    """Build the catalogue, ingest the world's events and snapshot the trained model.

    With ``stage`` (say a tmpfs) the home is built there and then copied to
    ``home``: the same files, without an fsync per commit while building them.
    """
    if stage is not None:
        staged = Path(tempfile.mkdtemp(prefix="trustfeed-load-", dir=stage))
        try:
            prepare(staged, items=items, users=users, creators=creators, events=events, seed=seed)
            shutil.copytree(staged, home, dirs_exist_ok=True)
        finally:
            shutil.rmtree(staged)
        return
    from trustfeed.custody import Principal, Role
    from trustfeed.data._world import generate_world
    from trustfeed.service import Platform, PlatformConfig, import_catalog, prescored
    from trustfeed.settings import Settings

    t0 = time.perf_counter()
    world = generate_world(
        n_items=items, n_users=users, n_creators=creators, n_events=events, seed=seed
    )
    shift = time.time() - world.end  # the generated period ends now
    console.print(
        f"world: {len(world.items):,} items, {len(world.interactions):,} events "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    config = PlatformConfig.from_settings(Settings(home=home, seed=seed))
    scorers = prescored()  # the caption models `trustfeed serve` screens with
    platform = Platform.open(config, text_classifiers=scorers)
    operator = Principal("load-prepare", Role.OPERATOR, config.domestic)
    figures: dict[str, Any] = {"items": len(world.items), "seed": seed}
    try:
        figures |= _import(platform, operator, world, shift, scorers, import_catalog)
        log = world.interactions
        # The world's follow rows (~0.05 % of events) are left out: the model's
        # "following" feature indexes a matrix by creator id, and the service's creator
        # ids are 63-bit pseudonyms, so one follow makes every feed fail (a known bug).
        log = log[log["event"].astype(str) != "follow"].reset_index(drop=True)
        figures |= _ingest_world(platform, operator, log, shift)
        t0 = time.perf_counter()
        with platform.model_lock:
            platform.model.refresh()  # what the serve's refresh loop does every 30 s
        figures["refresh_s"] = round(time.perf_counter() - t0, 1)
    finally:
        t0 = time.perf_counter()
        platform.close()  # snapshots the model at the log position it reflects
        figures["snapshot_s"] = round(time.perf_counter() - t0, 1)
    known = sorted(int(u) for u in world.interactions["user_id"].unique())
    figures["users"] = [f"u{u}" for u in known]
    (home / MARKER).write_text(json.dumps(figures), encoding="utf-8")
    console.print({k: v for k, v in figures.items() if k != "users"})


def _import(platform: Any, operator: Any, world: Any, shift: float, scorers: Any, run: Any) -> dict:
    from trustfeed.service import Upload

    frame = world.items
    uploads = [
        Upload(
            int(i), f"creator-{c}", str(topic), int(d), _caption(int(i), str(topic)),
            uploaded_at=float(p) + shift,
        )
        for i, c, topic, d, p in zip(
            frame["item_id"], frame["creator_id"], frame["topic"],
            frame["duration_ms"], frame["published_at"], strict=True,
        )
    ]  # fmt: skip
    t0 = time.perf_counter()

    def progress(done: int) -> None:
        rate = done / (time.perf_counter() - t0)
        console.print(f"  imported {done:,}/{len(uploads):,} items ({rate:.0f}/s)")

    statuses = run(platform, operator, uploads, _media, scorers=scorers, progress=progress)
    seconds = time.perf_counter() - t0
    return {
        "import_s": round(seconds, 1),
        "import_per_s": round(len(uploads) / seconds, 1),
        "statuses": {str(s.value): n for s, n in statuses.items()},
    }


_WORDS = ("quick", "funny", "daily", "best", "new", "easy", "live", "short", "top", "weekend")


def _caption(item_id: int, topic: str) -> str:
    """A caption from a small vocabulary: screened per item, scored once per distinct text."""
    a, b = _WORDS[item_id % 10], _WORDS[item_id // 10 % 10]
    return f"{a} {topic} clip, {b} edition"


def _media(upload: Any) -> bytes:
    """A distinct 64×64 PNG per item (random 8×8 blocks): cheap to hash, distinct PDQ."""
    from PIL import Image

    rng = np.random.default_rng(upload.item_id)
    blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(blocks).resize((64, 64), Image.Resampling.NEAREST).save(out, format="PNG")
    return out.getvalue()


def _ingest_world(platform: Any, operator: Any, log: Any, shift: float) -> dict:
    from trustfeed.service import Event

    t0 = time.perf_counter()
    columns = zip(
        log["user_id"], log["item_id"], log["event"].astype(str), log["timestamp"],
        log["watch_ms"], log["duration_ms"], strict=True,
    )  # fmt: skip
    batch: list[Event] = []
    for n, (user, item, name, ts, watch, duration) in enumerate(columns):
        event = Event(
            idempotency_key=f"world-{n:08d}", user_id=f"u{user}", item_id=int(item),
            event=name, timestamp=float(ts) + shift, watch_ms=int(watch),
            duration_ms=int(duration),
        )  # fmt: skip
        batch.append(event)
        if len(batch) == 1000:
            platform.ingest(operator, batch)
            batch = []
        if n % 100_000 == 99_999:
            console.print(f"  ingested {n + 1:,} events ({time.perf_counter() - t0:.0f} s)")
    if batch:
        platform.ingest(operator, batch)
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    platform.drain()  # no threads started: pumps the archiver and the trainer until caught up
    drain_s = time.perf_counter() - t0
    return {
        "events": len(log),
        "ingest_s": round(ingest_s, 1),
        "ingest_per_s": round(len(log) / ingest_s),
        "drain_s": round(drain_s, 1),
        "drain_per_s": round(len(log) / drain_s),
    }

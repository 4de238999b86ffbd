"""``trustfeed bench online``: how fast the engine learns from a stream, and how fresh it is.

Replays a time-ordered log: the first half fits the model, the rest streams
through ``partial_fit`` in batches (events/s), and for sampled single events we
time event → ``partial_fit`` → ``recommend`` for that user, checking that the
feed changed (freshness latency, p50/p99).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from trustfeed.data._world import generate_world
from trustfeed.recommend import Recommender


def run_online(
    interactions: pd.DataFrame | None = None,
    *,
    batch: int = 10_000,
    probes: int = 200,
    seed: int = 42,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console()
    if interactions is None:
        interactions = generate_world(seed=seed).interactions
    log = interactions.sort_values("timestamp", kind="stable").reset_index(drop=True)
    half = len(log) // 2
    rec = Recommender(seed=seed).fit(log.iloc[:half])
    stream = log.iloc[half:]
    tail = stream.iloc[-probes:]
    stream = stream.iloc[:-probes]
    timings = []
    for start in range(0, len(stream), batch):
        chunk = stream.iloc[start : start + batch]
        t0 = time.perf_counter()
        rec.partial_fit(chunk)
        timings.append((len(chunk), time.perf_counter() - t0))
    n_events = sum(n for n, _ in timings)
    rate = np.array([n / s for n, s in timings])
    latencies, changed = [], 0
    for _, event in tail.iterrows():
        one = event.to_frame().T.astype(log.dtypes.to_dict())
        user = int(one["user_id"].iloc[0])
        before = rec.recommend([user], k=10)
        t0 = time.perf_counter()
        rec.partial_fit(one)
        after = rec.recommend([user], k=10)
        latencies.append(time.perf_counter() - t0)
        changed += int(not np.array_equal(before, after))
    lat = np.array(latencies) * 1000
    result = {
        "events_streamed": n_events,
        "batch": batch,
        "events_per_s_median": float(np.median(rate)),
        "events_per_s_overall": n_events / sum(s for _, s in timings),
        "freshness_ms_p50": float(np.percentile(lat, 50)),
        "freshness_ms_p99": float(np.percentile(lat, 99)),
        "probes": len(lat),
        "probes_feed_changed": changed,
    }
    table = Table(title="online learning: partial_fit throughput and event → feed latency")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:,.1f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)
    return result

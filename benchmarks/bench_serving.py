"""Serving latency at 100,000 items: one feed, one feed with reasons, batches, refresh,
and one feed while events stream in and a refresh runs (the service's situation).

Run: ``python benchmarks/bench_serving.py`` (about 6 minutes: the fit and the refresh
are most of it; the fitted model stays in memory). ``--dense`` also times the
reference path that scores every item for each request, the approach before
candidate scoring, for the speed-up.

Timings on a shared machine are noisy: each figure is the median over rounds of the
per-round median (p50), or the 99th percentile of all requests (p99).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from trustfeed.data._world import generate_world
from trustfeed.recommend import Recommender, _scoring

ROUNDS = 3


def _timed(call: Callable[[int], object], users: np.ndarray) -> tuple[float, float]:
    """(p50, p99) in ms of ``call(user)`` over ``ROUNDS`` passes over ``users``."""
    medians, every = [], []
    for _ in range(ROUNDS):
        times = []
        for user in users:
            start = time.perf_counter()
            call(int(user))
            times.append(time.perf_counter() - start)
        medians.append(np.median(times))
        every += times
    return float(np.median(medians)) * 1e3, float(np.percentile(every, 99)) * 1e3


def _feeds(rec: Recommender, users: np.ndarray, label: str) -> dict[str, tuple[float, float]]:
    rec.recommend(users[:2], k=20)  # compile kernels and the background before timing
    rec.recommend_with_reasons(int(users[0]), k=20)
    out = {
        "recommend([u], k=20)": _timed(lambda u: rec.recommend([u], k=20), users),
        "recommend_with_reasons(u, k=20)": _timed(
            lambda u: rec.recommend_with_reasons(u, k=20), users
        ),
    }
    for name, (p50, p99) in out.items():
        print(f"{label:<10} {name:<34} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms", flush=True)
    return out


def _batch(rec: Recommender, users: np.ndarray) -> None:
    start = time.perf_counter()
    rec.recommend(users, k=20)
    seconds = time.perf_counter() - start
    print(f"batch      recommend({len(users)} users, k=20): {len(users) / seconds:,.0f} users/s")


def _while_streaming(
    rec: Recommender, users: np.ndarray, stream: pd.DataFrame, refresh: bool
) -> None:
    """Feeds timed while a writer folds in 100-event batches (10 ms apart) and, with
    ``refresh``, another thread re-solves the model all along."""
    batches = [stream.iloc[i : i + 100] for i in range(0, len(stream), 100)]
    done = threading.Event()
    folded = [0]

    def write() -> None:
        for batch in batches:
            rec.partial_fit(batch)
            folded[0] += len(batch)
            time.sleep(0.01)
        done.set()

    def solve() -> None:
        while not done.is_set():
            rec.refresh(solve_ann=True)

    threads = [threading.Thread(target=write)]
    if refresh:
        threads.append(threading.Thread(target=solve))
    start = time.perf_counter()
    for t in threads:
        t.start()
    times = []
    while not done.is_set():
        for user in users:
            t0 = time.perf_counter()
            rec.recommend([int(user)], k=20)
            times.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    for t in threads:
        t.join()
    p50, p99 = np.median(times) * 1e3, np.percentile(times, 99) * 1e3
    beside = "partial_fit and refresh" if refresh else "partial_fit"
    print(
        f"streaming  recommend([u], k=20) beside {beside}: p50 {p50:.2f} ms   p99 {p99:.2f} ms"
        f"   ({len(times) / seconds:,.0f} feeds/s, {folded[0] / seconds:,.0f} events/s)",
        flush=True,
    )


def main(n_items: int, n_users: int, n_events: int, n_requests: int, dense: bool) -> None:
    print(f"2 cores assumed; this machine has {os.cpu_count()}; load {os.getloadavg()[0]:.1f}")
    world = generate_world(
        n_users=n_users, n_creators=2_000, n_items=n_items, n_events=n_events, seed=1
    )
    log = world.interactions.sort_values("timestamp", kind="stable")
    cut = int(len(log) * 0.95)
    start = time.perf_counter()
    rec = Recommender(seed=0).fit(log.iloc[:cut], world.items)
    print(f"fit {time.perf_counter() - start:.1f} s on {cut:,} events, {rec.items.n_rows:,} items")
    users = log["user_id"].unique()[:n_requests]
    users = np.concatenate([users, [10**12]])  # and a stranger
    fast = _feeds(rec, users, "candidates")
    if dense:
        saved = _scoring.CANDIDATES_FROM
        _scoring.CANDIDATES_FROM = 10**12
        try:
            slow = _feeds(rec, users[: max(20, n_requests // 5)], "dense")
        finally:
            _scoring.CANDIDATES_FROM = saved
        for name in fast:
            print(f"speed-up   {name:<34} p50 x{slow[name][0] / fast[name][0]:.1f}")
    _batch(rec, users)
    start = time.perf_counter()
    rec.refresh(solve_ann=True)
    print(f"refresh    {time.perf_counter() - start:.1f} s (readers keep serving meanwhile)")
    stream = log.iloc[cut:]
    half = len(stream) // 2
    _while_streaming(rec, users, stream.iloc[:half], refresh=False)
    _while_streaming(rec, users, stream.iloc[half:], refresh=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="Videos the world draws.")
    parser.add_argument("--users", type=int, default=20_000, help="Users drawn.")
    parser.add_argument("--events", type=int, default=600_000, help="Impressions drawn.")
    parser.add_argument("--requests", type=int, default=300, help="Users timed per round.")
    parser.add_argument("--dense", action="store_true", help="Also time the dense path.")
    args = parser.parse_args()
    main(args.items, args.users, args.events, args.requests, args.dense)

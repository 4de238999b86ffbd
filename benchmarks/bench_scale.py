"""Scale: a generated world of 50,000+ videos and 1,000,000+ events, fit time and peak RSS.

A dense 50k × 50k item matrix (10 GB) does not fit in 4 GB: the engine solves EASE
exactly on the most frequent ``max_dense_items`` and uses cosine proximity weights
for pairs involving tail items. Run: ``python benchmarks/bench_scale.py``.

The world draws ``n_items`` videos but not every one gets an event: 56,000 drawn
give 53,214 distinct items in the log (seed 7), so the catalogue that is fitted
really has 50,000+ items; the run says so, or fails.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from trustfeed.data._world import generate_world
from trustfeed.recommend import Recommender

TARGET_ITEMS = 50_000


def main(n_items: int = 56_000, n_events: int = 1_000_000, n_users: int = 40_000) -> None:
    t0 = time.perf_counter()
    world = generate_world(
        n_users=n_users, n_creators=2_000, n_items=n_items, n_events=n_events, seed=7
    )
    gen_s = time.perf_counter() - t0
    log = world.interactions
    distinct = int(log["item_id"].nunique())
    print(
        f"catalogue {distinct:,} items, {len(log):,} interactions, "
        f"{log['user_id'].nunique():,} users (generated in {gen_s:.1f} s)",
        flush=True,
    )
    if distinct < TARGET_ITEMS:
        raise SystemExit(f"only {distinct:,} distinct items: raise --items")
    t0 = time.perf_counter()
    rec = Recommender(seed=7).fit(log, items=world.items)
    fit_s = time.perf_counter() - t0
    users = np.unique(log["user_id"].to_numpy())[:2_000]
    t0 = time.perf_counter()
    rec.recommend(users, k=20)
    rec_s = time.perf_counter() - t0
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"fit {fit_s:.1f} s | recommend 2,000 users x 20: {rec_s:.2f} s | peak RSS {rss_gb:.2f} GB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=56_000, help="Videos the world draws.")
    parser.add_argument("--events", type=int, default=1_000_000, help="Impressions drawn.")
    parser.add_argument("--users", type=int, default=40_000, help="Users drawn.")
    args = parser.parse_args()
    main(args.items, args.events, args.users)

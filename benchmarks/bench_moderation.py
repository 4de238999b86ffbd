"""Moderation benchmark: PDQ of a 720p image (with its 8 variants) and a 1M-hash bank.

Run: ``.venv/bin/python benchmarks/bench_moderation.py [--hashes 1000000] [--threads 2]``.
Targets (issue #4 §6): PDQ ≤ 20 ms per 720p image including the 8 variants;
≥ 1,000 lookups/s on 2 cores at radius 31 in ≤ 200 MB for 1M hashes. The bank
is compared in the same run with a brute-force numpy popcount and with FAISS
(``IndexBinaryFlat``); all three must return the same hits.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from trustfeed.moderation import BruteForceIndex, MultiIndexHash, PDQSignal


def _jpeg_720p(seed: int) -> bytes:
    """A textured 1280×720 JPEG (smooth random blocks, like a video frame)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (18, 32, 3), dtype=np.uint8)
    im = Image.fromarray(blocks).resize((1280, 720), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def bench_pdq(runs: int) -> None:
    pdq = PDQSignal()
    images = [_jpeg_720p(s) for s in range(8)]
    pdq.hash_bytes(images[0])  # warm-up
    times = []
    for i in range(runs):
        start = time.perf_counter()
        values = pdq.hash_bytes(images[i % len(images)])
        times.append((time.perf_counter() - start) * 1000)
    assert len(values) == 8
    print(
        f"PDQ 720p JPEG, decode + 8 variants: median {statistics.median(times):.1f} ms, "
        f"p95 {np.percentile(times, 95):.1f} ms over {runs} runs (target ≤ 20 ms)"
    )


def _queries(stored: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Half near stored hashes (≤ ~20 bits flipped), half unrelated."""
    near = stored[rng.integers(0, len(stored), n // 2)]
    bits = np.unpackbits(near, axis=1)
    bits ^= rng.random(bits.shape) < 0.08
    return np.vstack([np.packbits(bits, axis=1), rng.integers(0, 256, (n - n // 2, 32))]).astype(
        np.uint8
    )


def _rate(search, queries: np.ndarray, threads: int) -> tuple[float, list]:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(search, queries))
    return len(queries) / (time.perf_counter() - start), results


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def bench_bank(n: int, n_queries: int, threads: int, radius: int = 31) -> None:
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    ids = np.arange(n, dtype=np.int64)
    queries = _queries(stored, n_queries, rng)
    before = _rss_mb()
    start = time.perf_counter()
    mih = MultiIndexHash(stored, ids)
    built = time.perf_counter() - start
    print(f"\n{n:,} PDQ hashes, radius {radius}, {threads} threads, {n_queries} single lookups")
    print(
        f"multi-index hash: build {built:.2f} s, arrays {mih.nbytes / 2**20:.0f} MB "
        f"(process grew {_rss_mb() - before:.0f} MB beyond the raw hashes; target ≤ 200 MB)"
    )
    rate, fast = _rate(lambda q: mih.search(q, radius), queries, threads)
    print(f"  multi-index hash: {rate:,.0f} lookups/s (target ≥ 1,000)")
    brute = BruteForceIndex(stored, ids)
    few = queries[: max(20, n_queries // 20)]
    rate, slow = _rate(lambda q: brute.search(q, radius), few, threads)
    print(f"  brute-force numpy popcount: {rate:,.0f} lookups/s")
    _same(fast, slow)
    _bench_faiss(stored, few, threads, radius, slow)


def _same(fast: list, slow: list) -> None:
    for a, b in zip(fast, slow, strict=False):
        if sorted(a.ids.tolist()) != sorted(b.ids.tolist()):
            raise SystemExit("multi-index hash and brute force disagree")
    print(f"  hits agree on {len(slow)} queries")


def _bench_faiss(stored: np.ndarray, queries: np.ndarray, threads: int, radius: int, slow: list):
    try:
        import faiss
    except ImportError:
        print("  faiss: not installed")
        return
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexBinaryFlat(256)
    index.add(stored)
    start = time.perf_counter()
    for q in queries:
        lims, _, found = index.range_search(q[None], radius + 1)  # binary range is "< radius"
    single = len(queries) / (time.perf_counter() - start)
    start = time.perf_counter()
    lims, _, found = index.range_search(queries, radius + 1)
    batch = len(queries) / (time.perf_counter() - start)
    agree = all(
        sorted(found[lims[i] : lims[i + 1]].tolist()) == sorted(slow[i].ids.tolist())
        for i in range(len(queries))
    )
    print(
        f"  faiss IndexBinaryFlat: {single:,.0f} single lookups/s, {batch:,.0f}/s batched, "
        f"{stored.nbytes / 2**20:.0f} MB, hits agree: {agree}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pdq-runs", type=int, default=200)
    args = parser.parse_args()
    bench_pdq(args.pdq_runs)
    bench_bank(args.hashes, args.queries, args.threads)


if __name__ == "__main__":
    main()

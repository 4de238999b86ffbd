"""Benchmark the audit ledger: durable appends/s and proof times, beside pymerkle.

    python benchmarks/bench_ledger.py                     # 1,000,000-entry proof tree
    python benchmarks/bench_ledger.py --entries 10000000  # the 10M figure

Appends (every one durable: SQLite WAL + synchronous=FULL, PostgreSQL
synchronous_commit=on) are measured as a single ``append`` loop, ``append_many``
batches of 1,000, and N threads calling ``append`` (group commit). Proofs come
from the normal store (the tree is built through ``append_many`` in large
batches); generation and verification are timed separately (median, p99).
pymerkle (the `bench` extra) is measured on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _rate(n: int, run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


def _quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(0.99 * (len(ordered) - 1))] * 1e6


def bench_appends(url: str, *, count: int, threads: int) -> dict[str, float]:
    from trustfeed.custody.ledger import Ledger

    entry = b'{"kind":"decision","allowed":true,"principal":"svc-1","v":1}'
    with Ledger.open(url, origin="bench.example/ledger") as led:
        single = _rate(count, lambda: [led.append(entry) for _ in range(count)])
        batches = max(count // 100, 5)
        many = _rate(
            batches * 1000, lambda: [led.append_many([entry] * 1000) for _ in range(batches)]
        )

        per_thread = max(count // threads, 50)

        def work() -> None:
            for _ in range(per_thread):
                led.append(entry)

        def run_threads() -> None:
            pool = [threading.Thread(target=work) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()

        grouped = _rate(per_thread * threads, run_threads)
    return {"append": single, "append_many(1k)": many, f"{threads} threads": grouped}


def build_tree(url: str, entries: int) -> None:
    from trustfeed.custody.ledger import Ledger

    with Ledger.open(url, origin="bench.example/ledger") as led:
        have = led.size()
        batch = 50_000
        for start in range(have, entries, batch):
            stop = min(entries, start + batch)
            led.append_many([b"entry %d" % i for i in range(start, stop)])


def bench_proofs(url: str, *, entries: int, samples: int) -> dict[str, tuple[float, float]]:
    from trustfeed.custody.ledger import Ledger, verify_inclusion

    gen, ver = [], []
    rng = random.Random(7)
    with Ledger.open(url) as led:
        size = led.size()
        root = led.root_hash(size)
        for _ in range(samples):
            i = rng.randrange(size)
            t0 = time.perf_counter()
            proof = led.inclusion_proof(i, size)
            t1 = time.perf_counter()
            verify_inclusion(b"entry %d" % i, i, size, proof, root)
            t2 = time.perf_counter()
            gen.append(t1 - t0)
            ver.append(t2 - t1)
    return {"prove": _quantiles(gen), "verify": _quantiles(ver)}


def bench_pymerkle(kind: str, path: Path, *, entries: int, appends: int, samples: int):
    """pymerkle 7: appends/s (its own durability settings) and proof times."""
    warnings.simplefilter("ignore", DeprecationWarning)
    from pymerkle import InmemoryTree, SqliteTree, verify_inclusion

    tree = InmemoryTree() if kind == "InmemoryTree" else SqliteTree(str(path / "pymerkle.db"))
    rate = _rate(appends, lambda: [tree.append_entry(b"x %d" % i) for i in range(appends)])
    if kind == "SqliteTree":
        tree.append_entries([b"entry %d" % i for i in range(appends, entries)])
    else:
        for i in range(appends, entries):
            tree.append_entry(b"entry %d" % i)
    size = tree.get_size()
    root = tree.get_state(size)
    rng = random.Random(7)
    gen, ver = [], []
    for _ in range(samples):
        i = rng.randrange(1, size + 1)  # pymerkle indexes leaves from 1
        t0 = time.perf_counter()
        proof = tree.prove_inclusion(i, size)
        t1 = time.perf_counter()
        verify_inclusion(tree.get_leaf(i), root, proof)
        t2 = time.perf_counter()
        gen.append(t1 - t0)
        ver.append(t2 - t1)
    if kind == "SqliteTree":
        tree.close()
    return rate, _quantiles(gen), _quantiles(ver)


def _postgres_schema() -> tuple[str, Callable[[], None]] | None:
    try:
        import sqlalchemy as sa

        admin = sa.create_engine(POSTGRES_URL.replace("postgresql:", "postgresql+psycopg:"))
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any failure: PostgreSQL is just not here
        print(f"(PostgreSQL not reachable, skipped: {type(exc).__name__})")
        return None

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="proof tree size")
    parser.add_argument("--appends", type=int, default=2_000, help="appends per append test")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--samples", type=int, default=2_000, help="proofs timed")
    parser.add_argument("--pymerkle-entries", type=int, default=None, help="default: --entries")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-pymerkle", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the stores here")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_ledger_"))
    workdir.mkdir(parents=True, exist_ok=True)

    rows: list[tuple[str, str, str]] = []
    appends = bench_appends(
        f"sqlite:///{workdir / 'appends.db'}", count=args.appends, threads=args.threads
    )
    rows += [("trustfeed sqlite", k, f"{v:,.0f} appends/s") for k, v in appends.items()]
    pg = None if args.no_postgres else _postgres_schema()
    if pg is not None:
        url, drop = pg
        try:
            appends = bench_appends(url, count=args.appends, threads=args.threads)
            rows += [("trustfeed postgresql", k, f"{v:,.0f} appends/s") for k, v in appends.items()]
        finally:
            drop()

    tree_url = f"sqlite:///{workdir / f'tree_{args.entries}.db'}"
    build_s = time.perf_counter()
    build_tree(tree_url, args.entries)
    rows.append(
        ("trustfeed sqlite", f"build {args.entries:,}", f"{time.perf_counter() - build_s:.1f} s")
    )
    for name, (median, p99) in bench_proofs(
        tree_url, entries=args.entries, samples=args.samples
    ).items():
        rows.append(
            (
                "trustfeed sqlite",
                f"{name} @ {args.entries:,}",
                f"median {median:.0f} µs, p99 {p99:.0f} µs",
            )
        )

    if not args.no_pymerkle:
        n = args.pymerkle_entries or args.entries
        for kind in ("InmemoryTree", "SqliteTree"):
            rate, gen, ver = bench_pymerkle(
                kind, workdir, entries=n, appends=args.appends, samples=args.samples
            )
            rows.append((f"pymerkle {kind}", "append", f"{rate:,.0f} appends/s"))
            rows.append(
                (
                    f"pymerkle {kind}",
                    f"prove @ {n:,}",
                    f"median {gen[0]:.0f} µs, p99 {gen[1]:.0f} µs",
                )
            )
            rows.append(
                (
                    f"pymerkle {kind}",
                    f"verify @ {n:,}",
                    f"median {ver[0]:.0f} µs, p99 {ver[1]:.0f} µs",
                )
            )

    width = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"\n{'system':<{width[0]}}  {'measure':<{width[1]}}  result")
    for system, measure, result in rows:
        print(f"{system:<{width[0]}}  {measure:<{width[1]}}  {result}")


if __name__ == "__main__":
    main()

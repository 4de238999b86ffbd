"""Benchmark the event log: durable appends/s and reads/s, local log beside NATS JetStream.

    python benchmarks/bench_stream.py                 # both backends, median of 3
    python benchmarks/bench_stream.py --no-nats       # local log only

Every append is acknowledged only once durable (local: fdatasync, shared by
concurrent appends through group commit; NATS: the PubAck of a file-storage
stream). Each figure is events per second, the median of ``--repeat`` runs,
each on a fresh log; reads page through the log 1,000 records at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from trustfeed.stream import EventLog, open_log

NATS = ("127.0.0.1", 4222)


def _rate(events: int, run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return events / (time.perf_counter() - start)


def _batches(tag: str, count: int, size: int, payload: bytes) -> list[list[tuple[str, bytes]]]:
    keys = [f"{tag}-{i}" for i in range(count)]
    return [[(k, payload) for k in keys[i : i + size]] for i in range(0, count, size)]


def _threaded(log: EventLog, batches: list[list[tuple[str, bytes]]], threads: int) -> None:
    def work(mine: list[list[tuple[str, bytes]]]) -> None:
        for batch in mine:
            log.append(batch)

    pool = [threading.Thread(target=work, args=(batches[t::threads],)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _read_all(log: EventLog) -> None:
    after = 0
    while batch := log.read(after, 1000):
        after = batch[-1].offset


def measure(opener: Callable[[], EventLog], count: int, payload: bytes) -> dict[str, float]:
    """One run of every figure on a fresh log."""
    rates: dict[str, float] = {}
    with opener() as log:
        one = _batches("single", count, 1, payload)
        rates["append, batch 1"] = _rate(count, lambda: [log.append(b) for b in one])
        hundred = _batches("batch", count * 10, 100, payload)
        rates["append, batch 100"] = _rate(count * 10, lambda: [log.append(b) for b in hundred])
        threaded = _batches("threads", count, 1, payload)
        rates["append, 8 threads × batch 1"] = _rate(count, lambda: _threaded(log, threaded, 8))
        total = log.last_offset()
        rates["read, pages of 1,000"] = _rate(total, lambda: _read_all(log))
    return rates


@contextmanager
def local_logs(workdir: Path) -> Iterator[Callable[[], EventLog]]:
    yield lambda: open_log(str(workdir / f"log-{uuid.uuid4().hex[:8]}"))


@contextmanager
def nats_logs() -> Iterator[Callable[[], EventLog]]:
    names: list[str] = []

    def opener() -> EventLog:
        names.append(f"bench-{uuid.uuid4().hex[:10]}")
        return open_log(f"nats://{NATS[0]}:{NATS[1]}/{names[-1]}")

    try:
        yield opener
    finally:
        asyncio.run(_drop(names))


async def _drop(names: list[str]) -> None:
    import nats

    nc = await nats.connect(f"nats://{NATS[0]}:{NATS[1]}")
    js = nc.jetstream()
    for name in names:
        await js.delete_stream(name)
        await js.delete_stream(f"KV_{name}-positions")
    await nc.close()


def _nats_up() -> bool:
    try:
        socket.create_connection(NATS, timeout=1).close()
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2_000, help="events per batch-1 figure")
    parser.add_argument("--payload", type=int, default=200, help="bytes per event")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-nats", action="store_true")
    args = parser.parse_args()
    payload = b"x" * args.payload

    backends = {"local": local_logs(Path(tempfile.mkdtemp(prefix="bench_stream_")))}
    if args.no_nats or not _nats_up():
        print(f"(NATS at {NATS[0]}:{NATS[1]} skipped)")
    else:
        backends["nats"] = nats_logs()
    results: dict[str, dict[str, float]] = {}
    for name, logs in backends.items():
        with logs as opener:
            runs = [measure(opener, args.count, payload) for _ in range(args.repeat)]
        results[name] = {k: statistics.median(run[k] for run in runs) for k in runs[0]}

    print(f"events/s, median of {args.repeat}, {args.payload}-byte payloads")
    print(f"{'':32}" + "".join(f"{name:>14}" for name in results))
    for figure in next(iter(results.values())):
        print(f"{figure:32}" + "".join(f"{r[figure]:>14,.0f}" for r in results.values()))


if __name__ == "__main__":
    main()

"""The open-loop client of ``benchmarks/load.py``: feeds on schedule, events alongside.

Requests are issued at the target rate whatever the responses (a scheduler
puts each request on a queue at its due time; a fixed set of keep-alive
connections takes them off), and a request's latency runs from its due time,
so time spent queued in the client counts (no coordinated omission).

Why not httpx: its connection pool rescans the queued requests on every
change, so once the server falls behind, the client's own CPU grows with the
backlog and (on 2 cores) starves the server it measures. :class:`Connection`
is plain HTTP/1.1 over asyncio streams, tens of µs a request at any backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

P99_TARGET_MS = 50.0
RUN = f"{time.time_ns():x}"  # idempotency keys never repeat across runs on one home
#: uvicorn closes a keep-alive connection idle for 5 s; reconnect before that.
IDLE_REUSE_S = 4.0
#: Transport failures, counted as errors by type.
FAILURES = (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after any failure."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float = 10.0) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self._host, self._port, self._timeout = host, int(port), timeout
        fields = {"Host": f"{host}:{port}", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._used = 0.0

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._exchange(method, path, body), self._timeout)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        now = time.monotonic()
        if self._streams is not None and now - self._used > IDLE_REUSE_S:
            self.close()  # the server may be closing it this very moment
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        self._used = now
        reader, writer = self._streams
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        writer.write(f"{method} {path} HTTP/1.1\r\n{self._head}{extra}\r\n".encode() + body)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        if fields.get("transfer-encoding") == "chunked":
            data = await _chunked(reader)
        else:
            data = await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection") == "close":
            self.close()
        self._used = time.monotonic()  # the server's idle timer starts now
        return status, data

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append((await reader.readexactly(size + 2))[:-2])
    await reader.readuntil(b"\r\n")  # the empty trailer
    return b"".join(parts)


@dataclass
class Step:
    """What one rate step measured."""

    target: float
    duration: float
    latencies: list[float] = field(default_factory=list)  # seconds, successful feeds
    errors: Counter[str] = field(default_factory=Counter)
    short: int = 0  # feeds with fewer than k items
    rss: list[tuple[float, float]] = field(default_factory=list)  # (s since start, MB)
    events: int = 0
    ingest_latencies: list[float] = field(default_factory=list)
    freshness: list[float] = field(default_factory=list)
    stale: int = 0  # acknowledged batches the model had not reached when the step ended
    elapsed: float = 0.0  # from the first scheduled feed to the last answer

    def row(self) -> dict[str, Any]:
        span = max(self.duration, self.elapsed)
        lat = np.array(self.latencies) * 1000
        fresh = np.array(self.freshness) * 1000
        rss = [mb for _, mb in self.rss]
        return {
            "target": self.target,
            "achieved": len(lat) / span,
            "p50": _pct(lat, 50),
            "p99": _pct(lat, 99),
            "max": float(lat.max()) if len(lat) else float("nan"),
            "errors": sum(self.errors.values()),
            "short": self.short,
            "rss": max(rss) if rss else float("nan"),
            "ev_s": self.events / span,
            "ingest_p99": _pct(np.array(self.ingest_latencies) * 1000, 99),
            "fresh_p50": _pct(fresh, 50),
            "fresh_p99": _pct(fresh, 99),
            "stale": self.stale,
        }

    def ok(self) -> bool:
        r = self.row()
        return not r["errors"] and r["p99"] <= P99_TARGET_MS and r["achieved"] >= 0.95 * r["target"]


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


@dataclass(frozen=True)
class Load:
    """The server under test and the workload's shape."""

    url: str
    token: str
    pid: int
    users: list[str]
    items: int
    event_rate: float
    batch: int
    connections: int
    seed: int


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_step(load: Load, rate: float, duration: float, tag: str) -> Step:
    """Feeds at ``rate`` (open loop), events at ``load.event_rate``, for ``duration`` s."""
    step = Step(rate, duration)
    pending: dict[int, float] = {}  # an acknowledged batch's last_offset → when its 202 came
    done = asyncio.Event()
    background = [
        asyncio.create_task(_sample_rss(load.pid, step, done)),
        asyncio.create_task(_watch_model(Connection(load.url, {}), pending, step, done)),
    ]
    rng = random.Random(f"{load.seed}-{tag}-{rate}")
    loop = asyncio.get_running_loop()
    start, deadline = loop.time(), loop.time() + duration + 10.0

    async def feed(conn: Connection, due: float) -> None:
        await _one_feed(conn, rng.choice(load.users), due, step)

    async def events(conn: Connection, due: float) -> None:
        body = [_event(load, rng, f"{RUN}-{tag}-{due:.6f}-{j}") for j in range(load.batch)]
        await _one_batch(conn, body, due, step, pending)

    feeds = _drive(load, load.connections, rate, duration, deadline, feed, step)
    ingest = _drive(load, 4, load.event_rate / load.batch, duration, deadline, events, step)
    await asyncio.gather(feeds, ingest)
    step.elapsed = loop.time() - start
    await _settle(pending, timeout=10.0)
    step.stale = len(pending)
    done.set()
    await asyncio.gather(*background)
    return step


async def _drive(
    load: Load,
    connections: int,
    rate: float,
    duration: float,
    deadline: float,
    job: Callable[[Connection, float], Awaitable[None]],
    step: Step,
) -> None:
    """Run ``job`` at ``rate`` over ``connections``; what is still queued at ``deadline`` fails."""
    if rate <= 0:
        return
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        conn = Connection(load.url, {"Authorization": f"Bearer {load.token}"})
        while (due := await queue.get()) is not None:
            if loop.time() > deadline:
                step.errors["not sent (backlog)"] += 1
                continue
            await job(conn, due)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    async for due in _open_loop(rate, duration):
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)


async def _open_loop(rate: float, duration: float) -> AsyncIterator[float]:
    """Yield each scheduled send time (loop clock), sleeping until it is due."""
    loop = asyncio.get_running_loop()
    start, n = loop.time(), int(rate * duration)
    for i in range(n):
        due = start + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        yield due


async def _one_feed(conn: Connection, user: str, due: float, step: Step) -> None:
    try:
        status, body = await conn.request("GET", f"/v1/users/{user}/feed?k=10")
    except FAILURES as exc:
        step.errors[type(exc).__name__] += 1
        return
    if status != 200:
        step.errors[str(status)] += 1
        return
    step.latencies.append(asyncio.get_running_loop().time() - due)
    if len(json.loads(body)["items"]) < 10:
        step.short += 1


def _event(load: Load, rng: random.Random, key: str) -> dict[str, Any]:
    liked = rng.random() < 0.1
    return {
        "idempotency_key": f"load-{key}", "user_id": rng.choice(load.users),
        "item_id": rng.randrange(load.items), "event": "like" if liked else "view",
        "timestamp": time.time(), "watch_ms": rng.randrange(1_000, 60_000),
    }  # fmt: skip


async def _one_batch(
    conn: Connection,
    events: list[dict[str, Any]],
    due: float,
    step: Step,
    pending: dict[int, float],
) -> None:
    try:
        status, body = await conn.request(
            "POST", "/v1/events", json.dumps({"events": events}).encode()
        )
    except FAILURES as exc:
        step.errors[f"events {type(exc).__name__}"] += 1
        return
    now = asyncio.get_running_loop().time()
    if status != 202:
        step.errors[f"events {status}"] += 1
        return
    answer = json.loads(body)
    step.ingest_latencies.append(now - due)
    step.events += int(answer["accepted"])
    pending[int(answer["last_offset"])] = now


async def _watch_model(
    conn: Connection, pending: dict[int, float], step: Step, done: asyncio.Event
) -> None:
    """Poll /healthz; a batch is fresh once the model's log position reaches its offset."""
    loop = asyncio.get_running_loop()
    while not done.is_set():
        try:
            _, body = await conn.request("GET", "/healthz")
            position = int(json.loads(body)["model_position"])
        except (*FAILURES, ValueError, KeyError):
            await asyncio.sleep(0.02)
            continue
        now = loop.time()
        for offset in [o for o in pending if o <= position]:
            step.freshness.append(now - pending.pop(offset))
        await asyncio.sleep(0.02)
    conn.close()


async def _settle(pending: dict[int, float], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _sample_rss(pid: int, step: Step, done: asyncio.Event) -> None:
    start = time.monotonic()
    while not done.is_set():
        with contextlib.suppress(OSError):
            step.rss.append((time.monotonic() - start, rss_mb(pid)))
        await asyncio.sleep(0.5)

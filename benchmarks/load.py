"""Load: the feed rate ``trustfeed serve`` holds with p99 ≤ 50 ms while events are ingested.

1. Prepare a home (once; ``--home`` reuses it): a generated world's catalogue
   (100,000 items by default) imported and screened item by item through
   content security (:func:`trustfeed.service.import_catalog`), then its events
   ingested through :meth:`Platform.ingest` in batches of 1,000 and drained, so
   the model is trained from the pseudonymised stream; closing snapshots it.
2. Start ``trustfeed serve`` on 127.0.0.1 with ``TRUSTFEED_HOME`` there and
   issue an operator token with the bootstrap custodian token.
3. Per target rate, for ``--duration`` s: an open-loop client (``_load_client``:
   requests sent on schedule whatever the responses) GETs
   ``/v1/users/{user}/feed?k=10`` for random known users while
   ``POST /v1/events`` batches arrive at ``--event-rate``. Latency counts from
   the scheduled send time, so client-side queueing is in it. Freshness: from
   an ingest batch's 202 until ``/healthz`` reports ``model_position`` at or
   past its ``last_offset`` (polled every 20 ms).
4. The peer: a minimal FastAPI app (a fixed 10-item feed, a 202 for events)
   under the same uvicorn settings, driven by the same client: the framework's
   ceiling on this machine.

``--soak N`` holds the first rate for N s and reports errors and RSS growth.

Run: ``python benchmarks/load.py --home .load-home --duration 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from _load_client import P99_TARGET_MS, Load, Step, run_step
from _load_prepare import MARKER, console, prepare

# --- servers --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[tuple[str, int]]:
    """Run a server process until the block ends; yields (base URL, pid)."""
    port = _free_port()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*argv, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log_path)
        yield url, proc.pid
    finally:
        # SIGINT, not SIGTERM: uvicorn re-raises a captured SIGTERM after its shutdown,
        # which kills `trustfeed serve` before it closes the platform (no final snapshot).
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"server exited ({proc.returncode}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise SystemExit(f"server not healthy after {timeout:.0f} s (log: {log_path})")


def operator_token(url: str, home: Path) -> str:
    """An operator token, issued over the API with the bootstrap custodian token."""
    admin = (home / "keys" / "admin.token").read_text(encoding="utf-8").strip()
    body = {"principal": "load-client", "role": "operator", "jurisdiction": "US"}
    response = httpx.post(
        f"{url}/v1/custodian/tokens",
        json=body | {"label": "benchmarks/load.py"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["token"])


# --- the peer ------------------------------------------------------------------------


def peer_app() -> Any:
    """The framework's ceiling: the feed route's shape, a fixed 10-item answer."""
    from fastapi import FastAPI, status

    app = FastAPI()
    reasons = [{"code": "similar_to_liked", "weight": 0.5, "because_item": 7}]
    page = {
        "user_id": "u0", "personalised": True, "next_cursor": 10, "ledger_index": 1,
        "items": [{"item_id": i, "score": 1.0 / (i + 1), "reasons": reasons} for i in range(10)],
    }  # fmt: skip
    offset = {"last": 0}

    @app.get("/v1/users/{user_id}/feed")
    def feed(user_id: str, k: int = 10) -> dict[str, Any]:
        return page | {"user_id": user_id}

    @app.post("/v1/events", status_code=status.HTTP_202_ACCEPTED)
    def events(batch: dict[str, Any]) -> dict[str, int]:
        offset["last"] += len(batch["events"])
        return {"accepted": len(batch["events"]), "duplicates": 0, "last_offset": offset["last"]}

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model_position": offset["last"]}

    return app


def serve_peer(host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(peer_app(), host=host, port=port, log_level="warning")  # as `trustfeed serve`


# --- steps, soak, report ------------------------------------------------------------


async def step_rates(load: Load, rates: list[float], duration: float, name: str) -> list[Step]:
    await run_step(load, min(rates), 5.0, f"{name}-warmup")  # lazy solves, connection pool
    steps = []
    for rate in rates:
        step = await run_step(load, rate, duration, name)
        steps.append(step)
        r = step.row()
        console.print(
            f"  {name} {rate:>6.0f} rps: achieved {r['achieved']:.0f}, p50 {r['p50']:.1f} ms, "
            f"p99 {r['p99']:.1f} ms, errors {r['errors']} {dict(step.errors) or ''}"
        )
        if r["achieved"] < 0.5 * rate:
            console.print(f"  {name} saturated at {rate:.0f} rps: higher rates skipped")
            break
        await asyncio.sleep(2.0)
    return steps


def step_table(title: str, steps: list[Step]) -> Table:
    table = Table(title=title)
    heads = (
        "target rps", "achieved", "p50 ms", "p99 ms", "max ms", "errors", "short",
        "RSS MB", "events/s", "ingest p99 ms", "fresh p50 ms", "fresh p99 ms", "stale",
    )  # fmt: skip
    for head in heads:
        table.add_column(head, justify="right")
    for step in steps:
        r = step.row()
        mark = "" if step.ok() else " ✗"
        table.add_row(
            f"{r['target']:.0f}", f"{r['achieved']:.0f}", f"{r['p50']:.1f}",
            f"{r['p99']:.1f}{mark}", f"{r['max']:.0f}", str(r["errors"]), str(r["short"]),
            f"{r['rss']:.0f}", f"{r['ev_s']:.0f}", f"{r['ingest_p99']:.1f}",
            f"{r['fresh_p50']:.0f}", f"{r['fresh_p99']:.0f}", str(r["stale"]),
        )  # fmt: skip
    return table


def best_rate(steps: list[Step]) -> float | None:
    passed = [s.target for s in steps if s.ok()]
    return max(passed) if passed else None


async def soak(load: Load, rate: float, seconds: float, window: float = 60.0) -> None:
    await run_step(load, rate, 5.0, "soak-warmup")
    step = await run_step(load, rate, seconds, "soak")
    rss = step.rss
    start, end = rss[0][1], rss[-1][1]
    r = step.row()
    console.print(step_table(f"soak at {rate:.0f} rps for {seconds:.0f} s", [step]))
    console.print(
        f"RSS start {start:.0f} MB, end {end:.0f} MB, max {max(m for _, m in rss):.0f} MB: "
        f"growth {100 * (end - start) / start:+.1f} % | errors {r['errors']} "
        f"{dict(step.errors) or ''}"
    )
    by_window = Table(title=f"RSS per {window:.0f} s")
    by_window.add_column("t s", justify="right")
    by_window.add_column("RSS MB", justify="right")
    for t, mb in rss:
        if t // window != (t - 0.5) // window or (t, mb) == rss[-1]:
            by_window.add_row(f"{t:.0f}", f"{mb:.0f}")
    console.print(by_window)


def profile_summary(path: Path, focus: str = "Platform.feed", top: int = 12) -> Table:
    """Where the server's feed threads spend their samples: each call under ``focus``.

    py-spy's raw output is one collapsed stack per line with its sample count;
    a frame's share is the samples of stacks through ``focus`` that pass
    through the frame's call site directly below ``focus``.
    """
    below: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        at = [i for i, f in enumerate(frames) if focus in f]
        if not at:
            continue
        total += int(count)
        i = at[-1]
        callee = (
            frames[i + 1].split(" (")[0] if i + 1 < len(frames) else "(self: lock wait / own code)"
        )
        below[f"{frames[i].rsplit(':', 1)[-1].rstrip(')')} → {callee}"] += int(count)
    table = Table(title=f"{focus}: {total} samples (py-spy, 100 Hz)")
    table.add_column("line → callee")
    table.add_column("share", justify="right")
    for name, n in below.most_common(top):
        table.add_row(name, f"{100 * n / max(total, 1):.1f} %")
    return table


def _profile(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    spy = Path(sys.executable).with_name("py-spy")
    argv = [str(spy), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100"]
    argv += ["-f", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- main --------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> None:
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="trustfeed-load-"))
    if not (home / MARKER).exists():
        console.print(f"preparing {home} (reuse it with --home)")
        prepare(
            home, items=args.items, users=args.users, creators=args.creators,
            events=args.events, seed=args.seed, stage=args.stage,
        )  # fmt: skip
    meta = json.loads((home / MARKER).read_text(encoding="utf-8"))
    rates = [float(r) for r in args.rates.split(",")]
    if args.peer and not args.soak:
        peer_argv = [sys.executable, __file__, "--serve-peer"]
        with server(peer_argv, {}, home / "peer.log") as (url, pid):
            load = _load(args, url, "none", pid, meta)
            peer = asyncio.run(step_rates(load, rates, args.duration, "peer"))
    serve = [str(Path(sys.executable).with_name("trustfeed")), "serve", *args.serve_args.split()]
    env = {"TRUSTFEED_HOME": str(home), "TRUSTFEED_SEED": str(meta["seed"])}
    with server(serve, env, home / "serve.log") as (url, pid):
        load = _load(args, url, operator_token(url, home), pid, meta)
        spy = _profile(pid, args.profile, home / "profile.txt") if args.profile else None
        if args.soak:
            asyncio.run(soak(load, rates[0], args.soak))
            return
        steps = asyncio.run(step_rates(load, rates, args.duration, "trustfeed"))
        if spy is not None:
            spy.wait()
    console.print(f"home {home}: {meta['items']:,} items; {meta.get('events', 0):,} events")
    if args.peer:
        console.print(step_table("peer: minimal FastAPI, fixed 10-item feed", peer))
    console.print(step_table("trustfeed serve: GET /v1/users/{u}/feed?k=10", steps))
    if spy is not None:
        console.print(profile_summary(home / "profile.txt"))
    best = best_rate(steps)
    console.print(
        f"highest rate with p99 ≤ {P99_TARGET_MS:.0f} ms and no errors: "
        + (f"{best:.0f} rps" if best else "none of those tried")
        + (f" (peer: {best_rate(peer) or 0:.0f} rps)" if args.peer else "")
    )


def _load(args: argparse.Namespace, url: str, token: str, pid: int, meta: dict) -> Load:
    return Load(
        url, token, pid, meta["users"], meta["items"], args.event_rate, args.batch,
        args.connections, meta["seed"],
    )  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--home", help="Prepared home to reuse (default: prepare a new temporary one).")
    add("--items", type=int, default=100_000, help="Catalogue size when preparing.")
    add("--users", type=int, default=20_000, help="Users when preparing.")
    add("--creators", type=int, default=2_000, help="Creators when preparing.")
    add("--events", type=int, default=600_000, help="Impressions when preparing.")
    add("--seed", type=int, default=42)
    add("--duration", type=float, default=30.0, help="Seconds per rate step.")
    add("--rates", default="100,200,300,500,700", help="Feed rates to step through (rps).")
    add("--event-rate", type=float, default=200.0, help="Events/s ingested meanwhile.")
    add("--batch", type=int, default=50, help="Events per POST /v1/events.")
    add("--connections", type=int, default=64, help="Client keep-alive connections for feeds.")
    add("--soak", type=float, default=0.0, help="Hold the first rate this many seconds.")
    add("--serve-args", default="", help='Extra `trustfeed serve` options ("--refresh-every 600").')
    add("--no-peer", dest="peer", action="store_false", help="Skip the minimal-FastAPI peer.")
    add("--profile", type=float, default=0.0, help="py-spy the server this many seconds.")
    add("--stage", type=Path, help="Build the home here first (a tmpfs), then copy it.")
    add("--prepare-only", action="store_true", help="Prepare the home and stop.")
    add("--serve-peer", action="store_true", help=argparse.SUPPRESS)
    add("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    add("--port", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_peer:
        serve_peer(arguments.host, arguments.port)
    elif arguments.prepare_only:
        home = Path(arguments.home or tempfile.mkdtemp(prefix="trustfeed-load-"))
        prepare(
            home, items=arguments.items, users=arguments.users, creators=arguments.creators,
            events=arguments.events, seed=arguments.seed, stage=arguments.stage,
        )  # fmt: skip
    else:
        main(arguments)

"""The child side of ``test_service_crash.py``: a fork server running the real ingest path.

Importing the platform costs seconds and a crash test starts dozens of
processes, so the parent starts this module once
(``python -m tests._crash_forks SCRATCH_DIR``, in the repository root). It
imports and warms up the platform once, then for each request line on stdin
(``<mode>\\t<home>\\t<ack file>``) forks a child that:

1. opens the :class:`Platform` over ``home`` (no HTTP) and starts its pipeline
   threads (log → vault, log → model; in ``kill`` mode a model snapshot every
   few milliseconds, so kills land mid-snapshot too);
2. ingests every event in order with its fixed idempotency key: small batches
   (:data:`BATCHES`) in ``kill`` mode, larger ones (:data:`RESEND`) in
   ``finish`` mode, the retrying client. After each ``ingest`` returned
   (returned = durable) it appends ``ACK <batch> <accepted> <duplicates>`` to
   the ack file;
3. drains the pipeline, reports what the trainer applied, closes, and reports
   the pipeline's errors.

Every background step that fails (the platform logs it and retries) is
reported as it happens (``STEPFAIL``): a retry must not hide it.

The server prints ``PID <pid>`` at once and ``EXIT <status>`` when the child
ends; the parent SIGKILLs most children long before that. A fork of a
single-threaded process (this one never starts a thread) is as clean as a new
interpreter, and it starts in milliseconds.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from tests._service_world import DOMESTIC, config

from trustfeed.custody import Principal, Role
from trustfeed.service import Event, Platform, ServiceError

USERS = [f"user-{n}" for n in range(6)]
ITEMS = list(range(1, 11))
N_EVENTS = 160
#: In ``kill`` mode, snapshot the model this often (s), so kills also land mid-snapshot.
SNAPSHOT_EVERY_S = 0.01
#: A pipeline that has not caught up by then is stuck (the error says why).
DRAIN_TIMEOUT_S = 30.0
OPERATOR = Principal("app-backend", Role.OPERATOR, DOMESTIC)


def _events() -> list[Event]:
    rng = random.Random(7)  # the same events and keys in every process
    kinds = ["view", "view", "view", "like", "share", "skip", "follow"]
    return [
        Event.model_validate({
            "idempotency_key": f"crash-{n:05d}", "user_id": rng.choice(USERS),
            "item_id": rng.choice(ITEMS), "event": rng.choice(kinds),
            "timestamp": 1_700_000_000.0 + n, "watch_ms": rng.randrange(0, 30_000),
            "duration_ms": 15_000,
        })
        for n in range(N_EVENTS)
    ]  # fmt: skip


def _batches(events: list[Event], sizes: random.Random) -> list[list[Event]]:
    out, start = [], 0
    while start < len(events):
        size = sizes.randint(1, 6)
        out.append(events[start : start + size])
        start += size
    return out


EVENTS = _events()
BATCHES = _batches(EVENTS, random.Random(11))
RESEND = [EVENTS[n : n + 40] for n in range(0, N_EVENTS, 40)]


class Report(logging.Handler):
    """The child's ack file: one line per fact, flushed at once (a SIGKILL cannot take it back).

    It is also a logging handler: a background step that fails (the platform
    logs it and retries) is written down as ``STEPFAIL``.
    """

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.ERROR)
        self._out = out
        self._lock = threading.Lock()  # the main thread acks, the pipeline thread logs

    def say(self, line: str) -> None:
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def emit(self, record: logging.LogRecord) -> None:
        cause = record.exc_info[1] if record.exc_info else None
        why = f"{type(cause).__name__}: {cause}" if cause else ""
        self.say(f"STEPFAIL {record.getMessage()}: {why}".replace("\n", " "))


def _run(home: Path, kill_mode: bool, report: Report) -> None:
    settings = (
        replace(config(home), snapshot_every_s=SNAPSHOT_EVERY_S) if kill_mode else config(home)
    )
    platform = Platform.open(settings, text_classifiers=[])
    positions = (platform.trainer.position, platform.archiver.position, platform.log.last_offset())
    report.say("OPEN {} {} {}".format(*positions))
    platform.start()
    for n, batch in enumerate(BATCHES if kill_mode else RESEND):
        result = platform.ingest(OPERATOR, batch)
        report.say(f"ACK {n} {result.accepted} {result.duplicates}")
    try:
        platform.drain(timeout=DRAIN_TIMEOUT_S)
    except ServiceError as exc:
        raise ServiceError(f"{exc}; the pipeline's errors: {platform.errors}") from exc
    report.say(f"DRAINED {platform.trainer.applied} {platform.log.last_offset()}")
    platform.close()  # joins the pipeline thread: `errors` is final after this
    report.say(f"CLOSED {json.dumps(platform.errors)}")


def _child(mode: str, home: Path, acks: Path) -> int:
    with acks.open("a", encoding="utf-8") as out:
        report = Report(out)
        logging.getLogger("trustfeed").addHandler(report)
        try:
            _run(home, mode == "kill", report)
        except BaseException:
            report.say("ERROR " + traceback.format_exc().replace("\n", "\n| "))
            return 1
        finally:
            logging.getLogger("trustfeed").removeHandler(report)
    return 0


def _warm_up(home: Path) -> None:
    """Load what the first ingest and training load lazily, so each fork inherits it."""
    platform = Platform.open(config(home), text_classifiers=[])
    platform.ingest(OPERATOR, RESEND[0])
    platform.drain()
    platform.close()


def main(scratch: Path) -> None:
    _warm_up(scratch)
    if threading.active_count() != 1:
        raise RuntimeError("the fork server must stay single-threaded to fork safely")
    print("READY", flush=True)
    for line in sys.stdin:
        mode, home, acks = line.rstrip("\n").split("\t")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(mode, Path(home), Path(acks))
            finally:
                os._exit(code)
        print(f"PID {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"EXIT {status}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

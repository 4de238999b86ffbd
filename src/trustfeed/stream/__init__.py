"""The durable event log: an event is acknowledged only once it is durable.

``open_log(url)`` picks the backend: ``file:///abs/dir`` (or a plain path) for
the embedded :class:`LocalLog`, ``nats://127.0.0.1:4222/<stream>`` for
:class:`NatsLog` on NATS JetStream. Both implement :class:`EventLog`:

- ``append([(key, payload), ...]) -> [Ack(offset, duplicate)]`` returns after
  the events are durable; a key seen before stores nothing and acks the
  original offset, so clients may retry freely (idempotency keys).
- ``read(after, limit) -> [Record(offset, key, payload)]`` pages through the log;
  ``commit(consumer, offset)`` / ``position(consumer)`` keep a reader's place.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp, open_log(tmp) as log:
...     log.append([("evt-1", b"watch"), ("evt-2", b"like"), ("evt-1", b"watch")])
...     [record.key for record in log.read(after=0, limit=10)]
[Ack(offset=1, duplicate=False), Ack(offset=2, duplicate=False), Ack(offset=1, duplicate=True)]
['evt-1', 'evt-2']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trustfeed.stream._base import (
    MAX_BATCH,
    MAX_KEY_LENGTH,
    MAX_PAYLOAD_BYTES,
    MAX_READ_LIMIT,
    Ack,
    EventLog,
    Record,
)
from trustfeed.stream._errors import (
    CorruptLogError,
    InvalidInputError,
    LogClosedError,
    LogLockedError,
    StreamError,
    StreamUnavailableError,
)
from trustfeed.stream._local import LocalLog
from trustfeed.stream._registry import open_log, register_backend

if TYPE_CHECKING:
    from trustfeed.stream._nats import NatsLog

__all__ = [
    "MAX_BATCH",
    "MAX_KEY_LENGTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_READ_LIMIT",
    "Ack",
    "CorruptLogError",
    "EventLog",
    "InvalidInputError",
    "LocalLog",
    "LogClosedError",
    "LogLockedError",
    "NatsLog",
    "Record",
    "StreamError",
    "StreamUnavailableError",
    "open_log",
    "register_backend",
]


def __getattr__(name: str) -> Any:
    # nats-py takes ~0.2 s to import; only a process that uses NATS pays for it.
    if name == "NatsLog":
        from trustfeed.stream._nats import NatsLog

        return NatsLog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

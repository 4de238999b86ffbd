"""The event log's interface, its value types and the input checks every backend shares."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from trustfeed._closeable import Closeable
from trustfeed.stream._errors import InvalidInputError

#: Idempotency keys are visible ASCII (no spaces or control characters) because
#: JetStream carries them in a message header, where CR/LF would break framing.
MAX_KEY_LENGTH = 255
#: Below NATS's default max_payload (1 MiB, which also counts the headers).
MAX_PAYLOAD_BYTES = 1_000_000
#: Bounds the memory of one call on either side of the interface.
MAX_BATCH = 10_000
MAX_READ_LIMIT = 10_000

_KEY = re.compile(r"[\x21-\x7e]+")
_CONSUMER = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Ack:
    """Where an appended event is: its offset, and whether its key was already there."""

    offset: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Record:
    """One stored event."""

    offset: int
    key: str
    payload: bytes


class EventLog(Closeable, ABC):
    """A durable, append-only log of events, each with an idempotency key.

    Offsets start at 1 and increase by one per stored event (JetStream's stream
    sequence). Every method is synchronous and safe to call from many threads.
    """

    @abstractmethod
    def append(self, batch: Sequence[tuple[str, bytes]]) -> list[Ack]:
        """Store ``(idempotency_key, payload)`` pairs in order; return once they are durable.

        A key already in the log (or earlier in ``batch``) stores nothing and
        acks the original offset with ``duplicate=True``: a client that retries
        after a crash or timeout cannot double-count an event.
        """

    @abstractmethod
    def read(self, after: int, limit: int) -> list[Record]:
        """Up to ``limit`` durable records with offsets greater than ``after``, in order."""

    @abstractmethod
    def last_offset(self) -> int:
        """The offset of the last durable record (0 for an empty log)."""

    @abstractmethod
    def commit(self, consumer: str, offset: int) -> None:
        """Durably record that ``consumer`` has processed everything up to ``offset``."""

    @abstractmethod
    def position(self, consumer: str) -> int:
        """The last offset ``consumer`` committed, or 0 if it never did."""

    @abstractmethod
    def close(self) -> None:
        """Release the log's files or connection; later calls raise LogClosedError."""


def check_batch(batch: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The batch as a list, or InvalidInputError naming the first bad item.

    Every item is checked before any is stored, so a bad batch changes nothing.
    """
    if len(batch) > MAX_BATCH:
        raise InvalidInputError(f"batch of {len(batch)} events; at most {MAX_BATCH} per append")
    items = list(batch)
    for index, item in enumerate(items):
        if not isinstance(item, tuple) or len(item) != 2:
            raise InvalidInputError(f"event {index}: expected a (key, payload) pair")
        check_key(item[0], where=f"event {index}")
        check_payload(item[1], where=f"event {index}")
    return items


def check_key(key: object, *, where: str) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"{where}: the idempotency key must be a non-empty str")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{where}: idempotency key of {len(key)} characters; at most {MAX_KEY_LENGTH}"
        )
    if not _KEY.fullmatch(key):
        raise InvalidInputError(
            f"{where}: idempotency key {key[:40]!r} has characters outside visible ASCII"
        )


def check_payload(payload: object, *, where: str) -> None:
    if not isinstance(payload, bytes):
        raise InvalidInputError(f"{where}: the payload must be bytes, not {type(payload).__name__}")
    if not payload:
        raise InvalidInputError(f"{where}: empty payload")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidInputError(
            f"{where}: payload of {len(payload)} bytes; at most {MAX_PAYLOAD_BYTES}"
        )


def check_read(after: int, limit: int) -> None:
    if not _is_int(after) or after < 0:
        raise InvalidInputError(f"read after={after!r}: must be an int ≥ 0")
    if not _is_int(limit) or not 1 <= limit <= MAX_READ_LIMIT:
        raise InvalidInputError(f"read limit={limit!r}: must be an int in 1..{MAX_READ_LIMIT}")


def check_consumer(consumer: object) -> str:
    if not isinstance(consumer, str) or not _CONSUMER.fullmatch(consumer):
        raise InvalidInputError(f"consumer name {consumer!r}: use 1-64 letters, digits, '_' or '-'")
    return consumer


def check_commit(offset: int, last: int) -> None:
    """Refuse an offset past the log's end: committing it would skip unseen events."""
    if not _is_int(offset) or not 0 <= offset <= last:
        raise InvalidInputError(f"commit offset {offset!r}: must be an int in 0..{last}")


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as an offset is a caller's bug, not 1.
    return isinstance(value, int) and not isinstance(value, bool)

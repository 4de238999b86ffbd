"""Ledger entries as canonical JSON, and the sink every custody component writes to.

Canonical = sorted keys, no insignificant whitespace, UTF-8: the same record
always gives the same bytes, so an auditor can recompute an entry's leaf hash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

#: Bumped when the meaning of a record's fields changes; old records keep theirs.
RECORD_VERSION = 1


def encode_record(kind: str, **fields: Any) -> bytes:
    """One ledger entry: ``{"kind": …, "v": …, **fields}`` as canonical JSON bytes.

    >>> encode_record("erasure", user="u1f2")
    b'{"kind":"erasure","user":"u1f2","v":1}'
    """
    if "kind" in fields or "v" in fields:
        raise ValueError("'kind' and 'v' are reserved record fields")
    record = {"kind": kind, "v": RECORD_VERSION, **fields}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_record(entry: bytes) -> dict[str, Any]:
    """The record inside a ledger entry (for listing and audit tools)."""
    record = json.loads(entry)
    if not isinstance(record, dict) or "kind" not in record:
        raise ValueError("not a trustfeed ledger record")
    return record


class EntrySink(Protocol):
    """Where audit records go: the ledger, or anything with the same two calls.

    Both calls return only once the entries are durable.
    """

    def append(self, entry: bytes) -> int:
        """Append one entry; return its index."""
        ...

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        """Append entries in order, in one durable batch; return their indices."""
        ...


class MemorySink:
    """The explicit in-memory EntrySink: the ledger's two calls, nothing durable.

    For tests and dry runs, where a real ledger would only slow things down.

    >>> sink = MemorySink()
    >>> sink.append_many([encode_record("x", n=1), encode_record("y")])
    [0, 1]
    >>> [r["kind"] for r in sink.records()], len(sink.records("x"))
    (['x', 'y'], 1)
    """

    def __init__(self) -> None:
        self.entries: list[bytes] = []

    def append(self, entry: bytes) -> int:
        self.entries.append(entry)
        return len(self.entries) - 1

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        start = len(self.entries)
        self.entries.extend(entries)
        return list(range(start, len(self.entries)))

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The decoded records, optionally only those of one ``kind``."""
        decoded = [decode_record(e) for e in self.entries]
        return [r for r in decoded if kind is None or r["kind"] == kind]

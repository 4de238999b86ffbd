"""What the overview shows of the ledger: the checkpoint's status and recent policy decisions.

The checkpoint check is the cheap half of ``trustfeed audit verify``: the
signature and the root at the signed size, not a recomputation of every leaf
(that is the offline auditor's job, and would take seconds on a big ledger).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trustfeed.custody import Ledger, LedgerError, decode_record
from trustfeed.custody.ledger import open_checkpoint, parse_verifier

#: Entries read per SQL round trip when scanning back from the end.
CHUNK = 512
#: Entries one page request scans at most; a sparse filter pages on from there.
SCAN_LIMIT = 20_000


@dataclass(frozen=True)
class CheckpointStatus:
    """The latest checkpoint and whether it verifies against the ledger as stored now."""

    ledger_size: int
    present: bool = False
    verified: bool = False
    size: int = 0
    root: str = ""
    signed_by: tuple[str, ...] = ()
    problem: str = ""

    @property
    def uncovered(self) -> int:
        """Entries appended since the checkpoint (not yet covered by a signature)."""
        return self.ledger_size - self.size if self.present else self.ledger_size


def checkpoint_status(ledger: Ledger, public_key: Path, origin: str) -> CheckpointStatus:
    """Verify the latest checkpoint, step by step:

    1. read the latest signed note; without one there is nothing to verify;
    2. read the ledger's verifier key (``<ledger_key>.pub``), never the signing key;
    3. the note must carry a valid Ed25519 signature by that key;
    4. its origin must be this ledger's origin;
    5. its size must not exceed the ledger's, and the ledger's root at that
       size must equal the signed root (so no entry under it was changed).
    """
    size = ledger.size()
    note = ledger.latest_checkpoint()  # 1
    if note is None:
        return CheckpointStatus(size, problem="no checkpoint has been signed yet")
    try:
        verifier = parse_verifier(public_key.read_text(encoding="utf-8").strip())  # 2
        checkpoint, opened = open_checkpoint(note, [verifier])  # 3
    except (OSError, ValueError, LedgerError) as exc:
        return CheckpointStatus(size, present=True, problem=f"signature does not verify: {exc}")
    found = CheckpointStatus(
        size, present=True, size=checkpoint.size, root=checkpoint.root.hex(),
        signed_by=tuple(opened.verified_names),
    )  # fmt: skip
    problem = _root_problem(ledger, checkpoint.origin, origin, checkpoint.size, checkpoint.root)
    if problem:
        return replace(found, problem=problem)
    return replace(found, verified=True)


def _root_problem(ledger: Ledger, signed_origin: str, origin: str, size: int, root: bytes) -> str:
    if signed_origin != origin:  # 4
        return f"the checkpoint is for origin {signed_origin!r}, not {origin!r}"
    if size > ledger.size():  # 5
        return f"the checkpoint signs {size} entries but the ledger holds {ledger.size()}"
    if size and ledger.root_hash(size) != root:
        return f"the ledger's root at size {size} differs from the signed root"
    return ""


@dataclass(frozen=True)
class DecisionFilter:
    """Which policy decisions to list; None (or False) means "any"."""

    decision: str | None = None
    role: str | None = None
    data_class: str | None = None
    purpose: str | None = None
    #: Only requests from outside ``domestic``: cross-border transfers.
    transfers: bool = False
    domestic: str = ""

    def matches(self, record: dict[str, Any]) -> bool:
        wanted = (
            ("decision", self.decision), ("role", self.role),
            ("data_class", self.data_class), ("purpose", self.purpose),
        )  # fmt: skip
        if any(value is not None and record.get(key) != value for key, value in wanted):
            return False
        return not self.transfers or record.get("jurisdiction") != self.domestic

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for the next page's link)."""
        fields = {
            "decision": self.decision, "role": self.role,
            "data_class": self.data_class, "purpose": self.purpose,
        }  # fmt: skip
        out = {k: v for k, v in fields.items() if v}
        return out | ({"transfers": "1"} if self.transfers else {})


@dataclass(frozen=True)
class DecisionRow:
    index: int
    record: dict[str, Any]


@dataclass(frozen=True)
class DecisionPage:
    """Matching decisions, newest first; ``older`` is the cursor for the next page."""

    rows: list[DecisionRow] = field(default_factory=list)
    older: int | None = None
    scanned_to: int = 0
    scanned_from: int = 0


def recent_decisions(
    ledger: Ledger,
    wanted: DecisionFilter,
    *,
    before: int | None = None,
    limit: int = 25,
    scan_limit: int = SCAN_LIMIT,
) -> DecisionPage:
    """Decisions matching ``wanted`` below ledger index ``before``, newest first.

    Scans back at most ``scan_limit`` entries, so a rare filter on a huge
    ledger answers quickly and offers the next stretch as the ``older`` cursor.
    """
    stop = ledger.size() if before is None else max(0, min(before, ledger.size()))
    rows: list[DecisionRow] = []
    cursor = stop
    while cursor > 0 and len(rows) < limit and stop - cursor < scan_limit:
        start = max(0, cursor - CHUNK, stop - scan_limit)
        cursor = _scan(ledger.entries(start, cursor), start, wanted, rows, limit)
    return DecisionPage(rows, cursor if cursor > 0 else None, stop, cursor)


def _scan(
    entries: list[bytes], start: int, wanted: DecisionFilter, rows: list[DecisionRow], limit: int
) -> int:
    """Add matches from one chunk, newest first; returns where the scan stopped."""
    for offset in range(len(entries) - 1, -1, -1):
        record = _decision(entries[offset])
        if record is not None and wanted.matches(record):
            rows.append(DecisionRow(start + offset, record))
            if len(rows) == limit:
                return start + offset
    return start


def _decision(entry: bytes) -> dict[str, Any] | None:
    """A policy-decision record, or None for every other kind of entry."""
    if b'"kind":"decision"' not in entry:  # most entries are not: skip the JSON parse
        return None
    try:
        record = decode_record(entry)
    except (ValueError, json.JSONDecodeError):
        return None
    return record if record.get("kind") == "decision" else None

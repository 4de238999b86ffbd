"""The subject-access bundle (GDPR Art. 15 and 20): everything held, machine-readable.

Records whose media type is JSON are embedded as JSON, text as a string, and
anything else as base64, so the bundle stays one JSON document a user can
take to another service.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trustfeed.custody._access import DataClass, Decision

EXPORT_FORMAT = "trustfeed.vault.export"
EXPORT_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class VaultRecord:
    """One decrypted record; ``repr`` leaves the contents out of logs."""

    id: str
    data_class: DataClass
    residency: str
    media_type: str
    created_at: float
    data: bytes = field(repr=False)


def build_bundle(
    subject: str, owner: str, decision: Decision, records: Sequence[VaultRecord], *, now: float
) -> dict[str, Any]:
    """The export document; ``decision`` names the ledger entry that allowed it."""
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "generated_at": _iso(now),
        "subject": subject,
        "owner_hash": owner,
        "decision": {"ledger_index": decision.ledger_index, "policy_hash": decision.policy_hash},
        "data_classes": sorted({r.data_class.value for r in records}),
        "records": [_record(r) for r in sorted(records, key=lambda r: (r.created_at, r.id))],
    }


def _record(record: VaultRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": record.id,
        "data_class": record.data_class.value,
        "category": record.data_class.category.value,
        "residency": record.residency,
        "created_at": _iso(record.created_at),
        "media_type": record.media_type,
    }
    entry.update(_content(record.media_type, record.data))
    return entry


def _content(media_type: str, data: bytes) -> dict[str, Any]:
    try:
        if media_type == "application/json":
            return {"data": json.loads(data)}
        if media_type.startswith("text/"):
            return {"data": data.decode()}
    except (ValueError, UnicodeDecodeError):
        pass  # not what the media type says: fall back to the exact bytes
    return {"data_base64": base64.b64encode(data).decode()}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()

"""The auditor's routes: checkpoints, inclusion and consistency proofs, ledger entries.

Everything here is what an offline verifier (``trustfeed audit``) or a
witness needs; hashes are hex. Auditors and custodians may read it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from trustfeed.api._auth import PlatformDep, require
from trustfeed.custody import Principal, Role, decode_record
from trustfeed.service import NotFound, ServiceError

router = APIRouter(prefix="/v1/audit", tags=["auditor"])
Auditor = Annotated[Principal, Depends(require(Role.AUDITOR, Role.CUSTODIAN))]
MAX_ENTRIES = 1000


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(principal: Auditor, platform: PlatformDep) -> str:
    """The latest signed checkpoint (a C2SP signed note)."""
    note = platform.custody.ledger.latest_checkpoint()
    if note is None:
        raise NotFound("no checkpoint has been signed yet")
    return note


@router.post("/checkpoint", response_class=PlainTextResponse)
def sign_checkpoint(
    principal: Annotated[Principal, Depends(require(Role.CUSTODIAN))], platform: PlatformDep
) -> str:
    """Sign the ledger's current size and root (custodian only)."""
    return platform.custody.ledger.checkpoint()


@router.get("/size")
def size(principal: Auditor, platform: PlatformDep) -> dict[str, Any]:
    ledger = platform.custody.ledger
    n = ledger.size()
    return {"size": n, "root": ledger.root_hash(n).hex()}


@router.get("/proofs/inclusion")
def inclusion(
    principal: Auditor,
    platform: PlatformDep,
    index: Annotated[int, Query(ge=0)],
    size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    ledger = platform.custody.ledger
    n = size or ledger.size()
    if index >= n:
        raise ServiceError(f"index {index} is not below the tree size {n}")
    proof = ledger.inclusion_proof(index, n)
    return {"index": index, "size": n, "proof": [h.hex() for h in proof]}


@router.get("/proofs/consistency")
def consistency(
    principal: Auditor,
    platform: PlatformDep,
    old: Annotated[int, Query(ge=1)],
    new: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    ledger = platform.custody.ledger
    n = new or ledger.size()
    if old > n:
        raise ServiceError(f"old size {old} is larger than the new size {n}")
    proof = ledger.consistency_proof(old, n)
    return {"old": old, "new": n, "proof": [h.hex() for h in proof]}


@router.get("/entries")
def entries(
    principal: Auditor,
    platform: PlatformDep,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES)] = 100,
) -> dict[str, Any]:
    """Ledger entries (decoded records, plus each entry's exact bytes as hex)."""
    ledger = platform.custody.ledger
    stop = min(start + limit, ledger.size())
    raw = ledger.entries(start, stop) if start < stop else []
    return {
        "start": start,
        "entries": [
            {"index": start + i, "record": _decoded(entry), "hex": entry.hex()}
            for i, entry in enumerate(raw)
        ],
    }


def _decoded(entry: bytes) -> Any:
    try:
        return decode_record(entry)
    except Exception:  # an entry another writer framed differently is still shown raw
        return json.loads(entry) if entry[:1] == b"{" else None

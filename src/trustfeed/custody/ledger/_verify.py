"""The auditor's offline check of a whole ledger store against its signed checkpoints.

The auditor trusts nothing in the store but the signatures: every leaf hash
and root is recomputed from the entry bytes; stored subtree hashes are used
only to *locate* a discrepancy, and only after they are authenticated
top-down from a signed root.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass

import sqlalchemy as sa

from trustfeed.custody._errors import LedgerError, VerificationError
from trustfeed.custody.ledger import _store
from trustfeed.custody.ledger._merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    fold_right,
    leaf_hash,
    node_hash,
    range_nodes,
    split_point,
    verify_consistency,
)
from trustfeed.custody.ledger._note import (
    Checkpoint,
    Verifier,
    open_checkpoint,
    parse_verifier,
)
from trustfeed.storage import StorageError, open_engine


@dataclass(frozen=True)
class AuditReport:
    """What an audit established. ``uncovered`` entries are not yet under a checkpoint."""

    origin: str
    entries: int
    checkpoint_size: int
    checkpoint_root: bytes
    signed_by: tuple[str, ...]
    checkpoints_checked: int
    checkpoints_unverified: int
    trusted_size: int | None = None

    @property
    def uncovered(self) -> int:
        return self.entries - self.checkpoint_size


def audit_store(
    url: str,
    verifier_keys: Sequence[str | Verifier],
    trusted_checkpoint: str | None = None,
    witness_keys: Sequence[str | Verifier] = (),
) -> AuditReport:
    """Verify every entry of the ledger at ``url`` against its latest signed checkpoint.

    Raises :class:`VerificationError` (``index`` = the first entry that does not
    verify, where it can be named) when the store was tampered with, and
    :class:`LedgerError` when there is nothing to audit.
    """
    log_keys = [_verifier(k) for k in verifier_keys]
    cosigners = [_verifier(k) for k in witness_keys]
    if not log_keys:
        raise LedgerError("an audit needs at least one log verifier key")
    try:
        engine = open_engine(url, must_exist=True)
    except StorageError as exc:
        raise LedgerError(str(exc)) from exc
    try:
        with engine.connect() as conn:
            return _audit(conn, log_keys, cosigners, trusted_checkpoint)
    except sa.exc.SQLAlchemyError as exc:
        raise LedgerError(f"cannot read the ledger store: {exc}") from exc
    finally:
        engine.dispose()


def _verifier(key: str | Verifier) -> Verifier:
    return parse_verifier(key) if isinstance(key, str) else key


def _audit(
    conn: sa.Connection,
    log_keys: list[Verifier],
    cosigners: list[Verifier],
    trusted_note: str | None,
) -> AuditReport:
    # 1. The store must hold a ledger and at least one checkpoint.
    _store.require_schema(conn.engine)
    notes = _store.all_checkpoints(conn)
    if not notes:
        raise VerificationError("the store has no checkpoint to verify against")
    # 2. The latest checkpoint must carry a valid signature by every log key
    #    and every required witness key.
    latest, opened = open_checkpoint(notes[-1], [*log_keys, *cosigners])
    # 3. Earlier checkpoints that verify under the log keys are extra anchors,
    #    used to bound the damage when stored hashes were rewritten too.
    anchors = [*_anchors(notes[:-1], log_keys, latest.origin), latest]
    trusted = _trusted(trusted_note, log_keys, latest)
    wanted = {a.size for a in anchors} | ({trusted.size} if trusted else set())
    # 4. Recompute every leaf hash from the stored bytes, and the root at each anchor.
    tree, roots = _recompute(conn, wanted)
    # 5. The recomputed root must equal the signed root of every anchor, oldest
    #    first; on the first mismatch, name the first entry that does not verify.
    for anchor in sorted(anchors, key=lambda a: a.size):
        if roots.get(anchor.size) != anchor.root:
            raise _first_bad(conn, tree, anchor, anchors, roots)
    # 6. A checkpoint the auditor trusted earlier must be consistent with the
    #    latest: same root at its size, and a consistency proof that verifies.
    if trusted is not None:
        _check_trusted(conn, tree, trusted, latest, anchors, roots)
    return AuditReport(
        origin=latest.origin,
        entries=tree.size,
        checkpoint_size=latest.size,
        checkpoint_root=latest.root,
        signed_by=tuple(opened.verified_names),
        checkpoints_checked=len(anchors),
        checkpoints_unverified=len(notes) - len(anchors),
        trusted_size=None if trusted is None else trusted.size,
    )


def _anchors(notes: Sequence[str], log_keys: list[Verifier], origin: str) -> list[Checkpoint]:
    anchors = []
    for note in notes:
        try:
            checkpoint, _ = open_checkpoint(note, log_keys)
        except VerificationError:
            continue  # counted as unverified in the report; never trusted
        if checkpoint.origin == origin:
            anchors.append(checkpoint)
    return anchors


def _trusted(note: str | None, log_keys: list[Verifier], latest: Checkpoint) -> Checkpoint | None:
    if note is None:
        return None
    trusted, _ = open_checkpoint(note, log_keys)
    if trusted.origin != latest.origin:
        raise VerificationError(
            f"trusted checkpoint is for origin {trusted.origin!r}, store is {latest.origin!r}"
        )
    if trusted.size > latest.size:
        raise VerificationError(
            f"latest checkpoint (size {latest.size}) is older than the trusted one "
            f"(size {trusted.size}): a rollback",
            index=latest.size,
        )
    return trusted


def _recompute(conn: sa.Connection, sizes: set[int]) -> tuple[MemoryTree, dict[int, bytes]]:
    """Leaf hashes of all stored entries, and the recomputed root at each of ``sizes``."""
    tree, frontier = MemoryTree(), Frontier()
    roots = {0: EMPTY_ROOT} if 0 in sizes else {}
    with closing(_store.iter_entries(conn)) as stored:
        for idx, data in stored:
            if idx != frontier.size:
                raise VerificationError(
                    f"entry {frontier.size} is missing from the store (next stored index is {idx})",
                    index=frontier.size,
                )
            h = leaf_hash(data)
            tree.append(h)
            frontier.append(h)
            if frontier.size in sizes:
                roots[frontier.size] = frontier.root()
    return tree, roots


def _check_trusted(
    conn: sa.Connection,
    tree: MemoryTree,
    trusted: Checkpoint,
    latest: Checkpoint,
    anchors: list[Checkpoint],
    roots: dict[int, bytes],
) -> None:
    if roots.get(trusted.size) != trusted.root:
        raise _first_bad(conn, tree, trusted, anchors, roots)
    proof = tree.consistency_proof(trusted.size, latest.size)
    verify_consistency(trusted.size, latest.size, trusted.root, latest.root, proof)


# ----------------------------------------------------------------------------- locating


def _first_bad(
    conn: sa.Connection,
    tree: MemoryTree,
    failed: Checkpoint,
    anchors: list[Checkpoint],
    roots: dict[int, bytes],
) -> VerificationError:
    """The error naming the first entry that does not verify under ``failed``."""
    # 1. Descend from the signed root through authenticated stored subtree hashes.
    lo, hi, exact = _descend(conn, tree, failed.size, failed.root)
    if exact:
        return VerificationError(
            f"entry {lo} does not verify against the checkpoint at size {failed.size}", index=lo
        )
    # 2. The stored hashes were rewritten too: bound the damage by the signed
    #    checkpoints, the last one that still matches and the first that does not.
    matching = [a.size for a in anchors if a.size < failed.size and roots.get(a.size) == a.root]
    good = max(matching, default=0)
    first = max(lo, good)
    return VerificationError(
        f"entry {first} is the first entry not covered by a matching checkpoint: entries "
        f"{first}..{min(hi, failed.size) - 1} do not match the checkpoint at size {failed.size}, "
        "and the stored subtree hashes were rewritten as well",
        index=first,
    )


def _descend(
    conn: sa.Connection, tree: MemoryTree, size: int, root: bytes
) -> tuple[int, int, bool]:
    """Follow the differing child down from ``root``; (leaf, leaf + 1, True) when it gets there.

    Each step authenticates the two stored child hashes against their parent
    (already authenticated), so the stored tree is believed only where the
    signature vouches for it. Returns (lo, hi, False) where it cannot go on.
    """
    lo, hi, expected = 0, size, root
    while hi - lo > 1:
        mid = lo + split_point(hi - lo)
        left, right = _stored(conn, lo, mid), _stored(conn, mid, hi)
        if left is None or right is None or node_hash(left, right) != expected:
            return lo, hi, False
        if _recomputed(tree, lo, mid) != left:
            hi, expected = mid, left
        else:
            lo, expected = mid, right
    if hi - lo == 1 and _recomputed(tree, lo, hi) != expected:
        return lo, hi, True
    return lo, hi, False


def _stored(conn: sa.Connection, start: int, stop: int) -> bytes | None:
    wanted = range_nodes(start, stop)
    found = _store.fetch_nodes(conn, wanted)
    if len(found) != len(wanted):
        return None
    return fold_right([found[n] for n in wanted])


def _recomputed(tree: MemoryTree, start: int, stop: int) -> bytes | None:
    """MTH of the recomputed leaves, or None when entries are missing (never equal)."""
    return tree.range_hash(start, stop) if stop <= tree.size else None

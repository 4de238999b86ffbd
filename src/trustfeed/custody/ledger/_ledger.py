"""The ledger: durable appends with group commit, proofs from stored subtrees, checkpoints.

Group commit (leader/follower): each ``append``/``append_many`` queues a
request; the first caller to find no leader becomes the leader, writes every
queued request in *one* transaction, wakes the followers, and hands over once
its own request is durable. Under load, one fsync acknowledges many entries;
alone, an append costs one transaction as before.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustfeed._closeable import Closeable
from trustfeed.custody._errors import LedgerError
from trustfeed.custody.ledger import _store
from trustfeed.custody.ledger._merkle import (
    Frontier,
    Node,
    consistency_ranges,
    hashes_for_ranges,
    inclusion_ranges,
    leaf_hash,
    range_nodes,
)
from trustfeed.custody.ledger._note import (
    ALG_ED25519,
    Checkpoint,
    Signer,
    add_signature_lines,
    parse_signer,
    sign_note,
)
from trustfeed.storage import StorageError, open_engine

if TYPE_CHECKING:
    from trustfeed.custody.ledger._witness import Witness

#: The origin a ledger signs under when opened with a bare key and no origin.
DEFAULT_ORIGIN = "trustfeed.local/ledger"


@dataclass
class _Request:
    """One caller's entries, waiting for the leader to make them durable."""

    entries: list[bytes]
    start: int | None = None
    error: BaseException | None = None
    done: bool = False
    wakeup: threading.Event = field(default_factory=threading.Event)


class Ledger(Closeable):
    """An append-only, tamper-evident log of audit entries (an :class:`EntrySink`).

    Open with :meth:`open`. Without ``signing_key`` the ledger can still append
    and prove but not issue checkpoints (auditors open it that way to read).
    """

    def __init__(self, engine: sa.Engine, *, signer: Signer | None, origin: str | None) -> None:
        self._engine = engine
        self._signer = signer
        self.origin = origin
        self._frontier = Frontier()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: list[_Request] = []
        self._leader = False
        self._closed = False

    @classmethod
    def open(
        cls,
        url: str,
        *,
        signing_key: str | Signer | Ed25519PrivateKey | None = None,
        origin: str | None = None,
        create: bool = True,
    ) -> Ledger:
        """Open the ledger stored at ``url`` (creating it unless ``create=False``).

        ``signing_key`` is signer-note text, a :class:`Signer`, or a bare
        ``Ed25519PrivateKey`` (which then signs under the origin).
        ``origin`` names the log in its checkpoints; it defaults to the stored
        one, else the signing key's name, and may not change once stored.
        Auditors pass ``create=False`` so that a wrong URL fails instead of
        creating an empty ledger.
        """
        # A bare Ed25519 key is named below, once the stored origin is known.
        bare_key = signing_key if isinstance(signing_key, Ed25519PrivateKey) else None
        signer: Signer | None = None
        if isinstance(signing_key, str):
            signer = parse_signer(signing_key)
        elif isinstance(signing_key, Signer):
            signer = signing_key
        wanted = origin or (signer.name if signer is not None else None)
        if bare_key is not None and wanted is None:
            wanted = DEFAULT_ORIGIN
        try:
            engine = open_engine(url, must_exist=not create)
        except StorageError as exc:
            raise LedgerError(f"no ledger here: {exc}") from exc
        try:
            if not create:
                _store.require_schema(engine)
            stored = _store.create_schema(engine, origin=wanted)
        except (sa.exc.SQLAlchemyError, LedgerError) as exc:
            engine.dispose()
            raise LedgerError(f"cannot open the ledger: {exc}") from exc
        if origin is not None and stored != origin:
            engine.dispose()
            raise LedgerError(f"store belongs to origin {stored!r}, not {origin!r}")
        if bare_key is not None:
            # A bare Ed25519 key signs under the log's origin (the checkpoint's first line).
            signer = Signer(stored or DEFAULT_ORIGIN, ALG_ED25519, bare_key)
        return cls(engine, signer=signer, origin=stored)

    # ------------------------------------------------------------------ appends

    def append(self, entry: bytes) -> int:
        """Append one entry; return its index once it is durable."""
        return self._submit([entry])[0]

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        """Append entries in order in one durable transaction; return their indices."""
        return self._submit(entries)

    def _submit(self, entries: Sequence[bytes]) -> list[int]:
        data = [_as_bytes(e) for e in entries]
        if not data:
            return []
        request = _Request(data)
        with self._lock:
            if self._closed:
                raise LedgerError("ledger is closed")
            self._pending.append(request)
            lead = not self._leader
            self._leader = True
        if not lead:
            # Woken exactly once: either our entries are durable, or we are the next leader.
            request.wakeup.wait()
        if not request.done:
            self._lead_until_done(request)
        if request.error is not None:
            raise LedgerError(f"append failed: {request.error}") from request.error
        start = request.start if request.start is not None else 0
        return list(range(start, start + len(data)))

    def _lead_until_done(self, mine: _Request) -> None:
        """Commit queued batches until ours is durable, then pass leadership on."""
        try:
            while not mine.done:
                with self._lock:
                    batch, self._pending = self._pending, []
                self._commit(batch)
                for request in batch:
                    if request is not mine:
                        request.wakeup.set()
        finally:
            with self._lock:
                successor = self._pending[0] if self._pending else None
                self._leader = successor is not None
                if successor is None:
                    self._idle.notify_all()
            if successor is not None:
                successor.wakeup.set()

    def _commit(self, batch: list[_Request]) -> None:
        try:
            starts = self._write(batch)
        except (sa.exc.SQLAlchemyError, LedgerError, StorageError, OSError) as exc:
            for request in batch:
                request.error, request.done = exc, True
            return
        for request, start in zip(batch, starts, strict=True):
            request.start, request.done = start, True

    def _write(self, batch: list[_Request]) -> list[int]:
        """One transaction: lock, catch up with other writers, insert, commit (fsync)."""
        data = [e for request in batch for e in request.entries]
        with self._engine.begin() as conn:
            size = _store.lock_and_size(conn)
            frontier = self._frontier
            if frontier.size != size:
                frontier = _store.load_frontier(conn, size)
            frontier = frontier.copy()
            closed = [n for e in data for n in frontier.append(leaf_hash(e))]
            _store.write_batch(conn, size, data, closed)
        self._frontier = frontier
        starts, at = [], size
        for request in batch:
            starts.append(at)
            at += len(request.entries)
        return starts

    # ------------------------------------------------------------------ reads and proofs

    def size(self) -> int:
        """The committed number of entries (including other writers' appends)."""
        with self._engine.connect() as conn:
            return _store.read_size(conn)

    def entry(self, index: int) -> bytes:
        return self.entries(index, index + 1)[0]

    def entries(self, start: int, stop: int) -> list[bytes]:
        """The stored bytes of entries ``start .. stop - 1``."""
        with self._engine.connect() as conn:
            size = _store.read_size(conn)
            if not 0 <= start <= stop <= size:
                raise LedgerError(f"entries {start}..{stop} are outside the ledger (size {size})")
            return _store.read_entries(conn, start, stop)

    def root_hash(self, size: int | None = None) -> bytes:
        """The RFC 6962 root of the first ``size`` entries (default: all)."""
        with self._engine.connect() as conn:
            size = self._check_size(conn, size)
            return self._root(conn, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        with self._engine.connect() as conn:
            size = self._check_size(conn, size)
            if not 0 <= index < size:
                raise LedgerError(f"index {index} is outside a tree of size {size}")
            return self._hashes(conn, inclusion_ranges(index, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: now)."""
        with self._engine.connect() as conn:
            new_size = self._check_size(conn, new_size)
            if not 0 <= old_size <= new_size:
                raise LedgerError(f"no consistency proof from size {old_size} to {new_size}")
            return self._hashes(conn, consistency_ranges(old_size, new_size))

    @staticmethod
    def _check_size(conn: sa.Connection, size: int | None) -> int:
        stored = _store.read_size(conn)
        if size is None:
            return stored
        if not 0 <= size <= stored:
            raise LedgerError(f"tree size {size} is outside the ledger (size {stored})")
        return size

    @staticmethod
    def _hashes(conn: sa.Connection, ranges: list[tuple[int, int]]) -> list[bytes]:
        def lookup(wanted: list[Node]) -> dict[Node, bytes]:
            return _store.fetch_nodes(conn, wanted)

        return hashes_for_ranges(ranges, lookup)

    def _root(self, conn: sa.Connection, size: int) -> bytes:
        frontier = self._frontier  # one read: the leader may swap it meanwhile
        if size == frontier.size:
            return frontier.root()
        wanted = range_nodes(0, size)
        found = _store.fetch_nodes(conn, wanted)
        return Frontier(size, [found[n] for n in wanted]).root()

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, *, witnesses: Sequence[Witness] = ()) -> str:
        """Sign the current size and root, have ``witnesses`` cosign, store and return the note.

        Holds the writers' lock so that checkpoints are issued in tree order.
        """
        if self._signer is None:
            raise LedgerError("this ledger was opened without a signing key")
        if self.origin is None:
            raise LedgerError("this ledger has no origin; open it with origin=…")
        with self._engine.begin() as conn:
            size = _store.lock_and_size(conn)
            root = self._root(conn, size)
            note = sign_note(Checkpoint(self.origin, size, root).body(), [self._signer])
            for witness in witnesses:
                note = add_signature_lines(note, [self._cosign(conn, witness, note, size)])
            _store.insert_checkpoint(conn, size, root, note)
        return note

    def _cosign(self, conn: sa.Connection, witness: Witness, note: str, size: int) -> str:
        old_size, _ = witness.latest(self.origin or "")
        proof = self._hashes(conn, consistency_ranges(old_size, size)) if old_size <= size else []
        return witness.cosign(note, old_size=old_size, proof=proof)

    def latest_checkpoint(self) -> str | None:
        """The latest stored checkpoint note, or None before the first (no key needed)."""
        with self._engine.connect() as conn:
            return _store.latest_checkpoint(conn)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Release the database connections; appends after this raise LedgerError."""
        with self._idle:
            self._closed = True
            while self._leader:
                self._idle.wait()
        self._engine.dispose()


def _as_bytes(entry: bytes) -> bytes:
    if not isinstance(entry, bytes | bytearray | memoryview):
        raise TypeError(f"ledger entries are bytes, not {type(entry).__name__}")
    return bytes(entry)

"""A witness: cosigns a log's checkpoint only if it extends what it cosigned before.

A witness defeats a custodian that shows the auditor one history and the
regulator another (a split view) or quietly rewinds the log: it remembers, per
origin, the last size and root it cosigned, in its own SQL table, and refuses
any checkpoint that is not provably an append-only extension of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import sqlalchemy as sa

from trustfeed._closeable import Closeable
from trustfeed.custody._errors import VerificationError
from trustfeed.custody.ledger._merkle import EMPTY_ROOT, verify_consistency
from trustfeed.custody.ledger._note import (
    ALG_COSIGNATURE_V1,
    Checkpoint,
    Signer,
    Verifier,
    open_note,
    parse_signer,
    parse_verifier,
)
from trustfeed.storage import open_engine

_metadata = sa.MetaData()
_state = sa.Table(
    "witness_state",
    _metadata,
    sa.Column("origin", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


class WitnessRefusal(VerificationError):
    """The witness will not cosign: bad signature, fork, rollback or stale ``old_size``.

    ``known_size`` is the size the witness last cosigned (a log retries from it).
    """

    def __init__(self, message: str, *, known_size: int) -> None:
        super().__init__(message)
        self.known_size = known_size


class Witness(Closeable):
    """Cosigns checkpoints of the logs it is configured for (origin → log verifier key)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        signer: Signer,
        logs: Mapping[str, Verifier],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if signer.algorithm != ALG_COSIGNATURE_V1:
            raise ValueError("a witness needs a cosigner key (generate_cosigner_key)")
        self._engine = engine
        self._signer = signer
        self._logs = dict(logs)
        self._clock = clock

    @classmethod
    def open(
        cls,
        store_url: str,
        *,
        signing_key: str,
        logs: Mapping[str, str],
        clock: Callable[[], float] = time.time,
    ) -> Witness:
        """Open the witness state at ``store_url``; ``logs`` maps origin → verifier key text."""
        signer = parse_signer(signing_key)
        verifiers = {origin: parse_verifier(text) for origin, text in logs.items()}
        engine = open_engine(store_url)
        _metadata.create_all(engine, checkfirst=True)
        return cls(engine, signer=signer, logs=verifiers, clock=clock)

    @property
    def verifier_key(self) -> str:
        """The public key auditors use to check this witness's cosignatures."""
        return self._signer.verifier.text()

    def latest(self, origin: str) -> tuple[int, bytes]:
        """The (size, root) last cosigned for ``origin``; (0, empty root) if none."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(_state.c.size, _state.c.root).where(_state.c.origin == origin)
            ).first()
        return (0, EMPTY_ROOT) if row is None else (int(row[0]), bytes(row[1]))

    def cosign(self, note: str, *, old_size: int, proof: Sequence[bytes]) -> str:
        """Return a cosignature line for ``note``, or raise :class:`WitnessRefusal`."""
        checkpoint = self._check_signed(note)
        known_size, known_root = self.latest(checkpoint.origin)
        self._check_consistent(checkpoint, old_size, proof, known_size, known_root)
        # 5. Record the new state, only if nobody moved it meanwhile (compare and swap).
        self._advance(checkpoint, known_size, known_root)
        # 6. Cosign the exact note body we verified.
        body = note[: note.rfind("\n\n") + 1].encode()
        return self._signer.signature_line(body, timestamp=int(self._clock()))

    def _check_signed(self, note: str) -> Checkpoint:
        # 1. Only logs we are configured for, and only with their own valid signature.
        try:
            body = note[: note.rfind("\n\n") + 1]
            origin = body.split("\n", 1)[0]
            verifier = self._logs.get(origin)
            if verifier is None:
                raise VerificationError(f"unknown log origin {origin!r}")
            opened = open_note(note, [verifier])
            # 2. Parse the checkpoint body it signs.
            return Checkpoint.parse(opened.body)
        except VerificationError as exc:
            raise WitnessRefusal(f"refused: {exc}", known_size=0) from exc

    @staticmethod
    def _check_consistent(
        checkpoint: Checkpoint,
        old_size: int,
        proof: Sequence[bytes],
        known_size: int,
        known_root: bytes,
    ) -> None:
        # 3. No rollback, and the proof must start from what we cosigned last.
        if checkpoint.size < known_size:
            raise WitnessRefusal(
                f"refused: rollback from size {known_size} to {checkpoint.size}",
                known_size=known_size,
            )
        if old_size != known_size:
            raise WitnessRefusal(
                f"refused: proof is from size {old_size}, witness is at {known_size}",
                known_size=known_size,
            )
        # 4. The new tree must extend the old one (same size: same root), else a fork.
        try:
            verify_consistency(known_size, checkpoint.size, known_root, checkpoint.root, proof)
        except VerificationError as exc:
            raise WitnessRefusal(
                f"refused: not consistent with size {known_size} (fork?): {exc}",
                known_size=known_size,
            ) from exc

    def _advance(self, checkpoint: Checkpoint, known_size: int, known_root: bytes) -> None:
        values = {"size": checkpoint.size, "root": checkpoint.root, "updated_at": time.time()}
        with self._engine.begin() as conn:
            if known_size == 0 and known_root == EMPTY_ROOT:
                moved = _insert_if_absent(conn, checkpoint.origin, values)
            else:
                result = conn.execute(
                    _state.update()
                    .where(_state.c.origin == checkpoint.origin)
                    .where(_state.c.size == known_size, _state.c.root == known_root)
                    .values(**values)
                )
                moved = result.rowcount != 1
        if moved:
            raise WitnessRefusal("refused: witness state changed meanwhile", known_size=known_size)

    def close(self) -> None:
        self._engine.dispose()


def _insert_if_absent(conn: sa.Connection, origin: str, values: dict[str, object]) -> bool:
    """Insert the first state for ``origin``; True when a row was already there."""
    exists = conn.execute(sa.select(_state.c.size).where(_state.c.origin == origin)).first()
    if exists is not None:
        if int(exists[0]) == 0:
            conn.execute(_state.update().where(_state.c.origin == origin).values(**values))
            return False
        return True
    conn.execute(_state.insert().values(origin=origin, **values))
    return False

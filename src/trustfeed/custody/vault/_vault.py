"""The vault: personal records under per-user data keys, reachable only through policy.

Every public method takes an :class:`AccessRequest`, asks the policy point
once (``enforce``), checks that the decision answers exactly that request,
and only then touches rows; plaintext comes out of the :class:`Gate` only
for that decision. Erasure destroys the user's data key (crypto-shredding),
so copies of their ciphertext in backups become noise as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from trustfeed.custody._access import AccessRequest, Action, Authorizer, DataClass, Decision
from trustfeed.custody._errors import AccessDenied
from trustfeed.custody._keyed import KeyedHasher
from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.custody.vault import _tables as t
from trustfeed.custody.vault._crypto import KeyRing, RecordMeta
from trustfeed.custody.vault._errors import ErasedError, RecordNotFound, VaultError
from trustfeed.custody.vault._export import VaultRecord, build_bundle
from trustfeed.custody.vault._gate import Gate, WrappedKey, check_decision
from trustfeed.custody.vault._requests import MAX_RECORD_ID, USER_SCOPE_PREFIX, user_scope

DEFAULT_MEDIA_TYPE = "application/octet-stream"
_OWNER_VERSION = "owner_hash_version"
_ROTATION_BATCH = 500


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """What an erasure destroyed, and the ledger entry that records it."""

    owner: str
    records: int
    data_classes: tuple[str, ...]
    erased_at: float
    ledger_index: int


class Vault:
    """Encrypted personal records; every read and write is a policy decision.

    ``keks`` are the custodian's AES-256 key-encryption keys by id and
    ``current_kek`` wraps new data keys. ``owner_hasher`` turns user ids into
    the keyed hashes stored instead of them; the store pins the key version
    it was created with, so rotating the pseudonym key leaves lookups intact.
    The engine belongs to the caller (who disposes it).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        authorizer: Authorizer,
        sink: EntrySink,
        keks: Mapping[str, bytes],
        current_kek: str,
        owner_hasher: KeyedHasher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._authorizer = authorizer
        self._sink = sink
        self._keyring = KeyRing(keks, current=current_kek)
        self._hasher = owner_hasher
        self._clock = clock
        t.metadata.create_all(engine)
        self._owner_version = self._pin_owner_version()
        self._gate = Gate(self._keyring, self.owner_digest)

    @property
    def current_kek(self) -> str:
        return self._keyring.current

    def owner_digest(self, user_id: str) -> str:
        """The keyed hash this store keeps instead of ``user_id`` (and writes to the ledger)."""
        return self._hasher.digest(user_id, version=self._owner_version)

    # -- public operations: one policy decision each -------------------------

    def put(
        self, request: AccessRequest, data: bytes, *, media_type: str = DEFAULT_MEDIA_TYPE
    ) -> VaultRecord:
        """Store ``data`` as the record the request names (WRITE); ids are never reused."""
        owner_id = _expect(request, Action.WRITE, user_level=False)
        if not isinstance(data, bytes) or not media_type or len(media_type) > 100:
            raise VaultError("a record is bytes with a media type of at most 100 characters")
        decision = self._decide(request)
        owner, now = self.owner_digest(owner_id), self._clock()
        resource = request.resource
        meta = RecordMeta(
            resource.id, owner, resource.data_class.value, resource.residency, media_type
        )
        with self._engine.begin() as conn:
            self._refuse_if_erased(conn, owner)
            key = self._data_key(conn, owner) or self._create_data_key(conn, owner, now)
            sealed = self._gate.seal(decision, key, meta, data)
            self._insert_record(conn, meta, now, sealed)
        return VaultRecord(meta.id, resource.data_class, meta.residency, media_type, now, data)

    def put_many(
        self,
        writes: Sequence[tuple[AccessRequest, bytes]],
        *,
        media_type: str = DEFAULT_MEDIA_TYPE,
        in_transaction: Callable[[sa.Connection], None] | None = None,
    ) -> list[VaultRecord]:
        """:meth:`put` for many records: one policy batch, one transaction, all or nothing.

        Every write must be allowed or none is stored. ``in_transaction`` runs in
        the same transaction (the ingest pipeline commits its stream position
        there, so a crash can neither lose nor repeat a batch). Erased owners'
        writes are dropped, not refused: their events may still be in flight.
        """
        owners = [_expect(request, Action.WRITE, user_level=False) for request, _ in writes]
        if any(not isinstance(data, bytes) for _, data in writes):
            raise VaultError("a record is bytes")
        decisions = self._decide_many([request for request, _ in writes])
        now, stored = self._clock(), []
        with self._engine.begin() as conn:
            keys: dict[str, WrappedKey | None] = {}
            for (request, data), owner_id, decision in zip(writes, owners, decisions, strict=True):
                owner = self.owner_digest(owner_id)
                if owner not in keys:
                    keys[owner] = None if self._is_erased(conn, owner) else (
                        self._data_key(conn, owner) or self._create_data_key(conn, owner, now)
                    )  # fmt: skip
                key = keys[owner]
                if key is None:
                    continue
                resource = request.resource
                meta = RecordMeta(
                    resource.id, owner, resource.data_class.value, resource.residency, media_type
                )
                self._insert_record(conn, meta, now, self._gate.seal(decision, key, meta, data))
                stored.append(
                    VaultRecord(meta.id, resource.data_class, meta.residency, media_type, now, data)
                )
            if in_transaction is not None:
                in_transaction(conn)
        return stored

    def is_erased(self, user_id: str) -> bool:
        """Whether this user was erased (the tombstone is all that is left)."""
        with self._engine.connect() as conn:
            return self._is_erased(conn, self.owner_digest(user_id))

    def get(self, request: AccessRequest) -> VaultRecord:
        """The one record the request names (READ)."""
        owner_id = _expect(request, Action.READ, user_level=False)
        decision = self._decide(request)
        query = t.records.c.id == request.resource.id
        found = self._read(decision, owner_id, query)
        if not found:
            raise RecordNotFound(f"no record {request.resource.id!r} for this owner")
        return found[0]

    def records_of(self, request: AccessRequest) -> list[VaultRecord]:
        """All of a user's records of the request's data class (READ of the user scope)."""
        owner_id = _expect(request, Action.READ, user_level=True)
        decision = self._decide(request)
        query = t.records.c.data_class == request.resource.data_class.value
        return self._read(decision, owner_id, query)

    def export(self, request: AccessRequest) -> dict[str, Any]:
        """Everything held about the user as one JSON-ready bundle (EXPORT of the user scope)."""
        owner_id = _expect(request, Action.EXPORT, user_level=True)
        decision = self._decide(request)
        found = self._read(decision, owner_id, sa.true())
        owner = self.owner_digest(owner_id)
        return build_bundle(owner_id, owner, decision, found, now=self._clock())

    def erase(self, request: AccessRequest) -> ErasureReceipt:
        """Crypto-shred a user (ERASE of the user scope).

        1. Ask the policy point; act only on an allow for this request (the
           decision is in the ledger before anything is destroyed).
        2. In one transaction: delete the user's wrapped data key, so every
           copy of their ciphertext (backups included) is undecryptable;
           delete their ciphertext rows; leave a tombstone so later reads say
           "erased" rather than "not found".
        3. Append an ``erasure`` entry naming the owner by keyed hash to the
           ledger, then note its index on the tombstone. The ledger is written
           after the commit (so a ledger sharing an SQLite file never waits on
           this transaction); if it fails, the erasure stands and a retried
           ``erase`` appends the missing entry instead of refusing.
        """
        owner_id = _expect(request, Action.ERASE, user_level=True)
        decision = self._decide(request)
        owner = self.owner_digest(owner_id)
        with self._engine.begin() as conn:
            tombstone = conn.execute(
                sa.select(t.erasures).where(t.erasures.c.owner == owner)
            ).one_or_none()
            if tombstone is not None and tombstone.ledger_index is not None:
                raise ErasedError("this user's data was already erased")
            if tombstone is None:
                tombstone = self._shred(conn, owner)
        classes = tuple(c for c in tombstone.data_classes.split(",") if c)
        entry = encode_record(
            "erasure",
            owner=owner,
            records=tombstone.records,
            data_classes=list(classes),
            decision=decision.ledger_index,
            erased_at=tombstone.erased_at,
        )
        index = self._sink.append(entry)
        with self._engine.begin() as conn:
            conn.execute(
                t.erasures.update().where(t.erasures.c.owner == owner).values(ledger_index=index)
            )
        return ErasureReceipt(owner, tombstone.records, classes, tombstone.erased_at, index)

    def rotate_kek(self, new_kek_id: str) -> int:
        """Rewrap every data key under ``new_kek_id``; records are not touched.

        Custodian key maintenance, not a personal-data access: no data key
        leaves this method and no record is opened, so it asks no policy. It
        runs in batches (each row names its own KEK, so a half-done rotation
        is consistent and can be resumed) and ends with a ledger entry.
        """
        if not self._keyring.knows(new_kek_id):
            raise VaultError(f"no KEK {new_kek_id!r} loaded; add it to the key file first")
        rewrapped = 0
        while batch := self._rewrap_batch(new_kek_id):
            rewrapped += batch
        self._keyring.current = new_kek_id
        self._sink.append(
            encode_record("kek_rotation", kek=new_kek_id, rewrapped=rewrapped, at=self._clock())
        )
        return rewrapped

    # -- helpers ---------------------------------------------------------------

    def _decide(self, request: AccessRequest) -> Decision:
        decision = self._authorizer.enforce(request)
        check_decision(decision, request)
        return decision

    def _decide_many(self, requests: Sequence[AccessRequest]) -> list[Decision]:
        decide_many = getattr(self._authorizer, "decide_many", None)
        decisions = (
            decide_many(requests) if decide_many else [self._authorizer.decide(r) for r in requests]
        )
        for decision, request in zip(decisions, requests, strict=True):
            if not decision.allowed:
                raise AccessDenied(decision)
            check_decision(decision, request)
        return list(decisions)

    def _read(self, decision: Decision, owner_id: str, where: Any) -> list[VaultRecord]:
        owner = self.owner_digest(owner_id)
        with self._engine.connect() as conn:
            self._refuse_if_erased(conn, owner)
            key = self._data_key(conn, owner)
            select = sa.select(t.records).where(t.records.c.owner == owner, where)
            rows = conn.execute(select.order_by(t.records.c.created_at, t.records.c.id)).all()
        if key is None or not rows:
            return []
        metas = [(_meta(row), row.sealed) for row in rows]
        plaintexts = self._gate.open(decision, key, metas)
        return [_record(row, data) for row, data in zip(rows, plaintexts, strict=True)]

    def _pin_owner_version(self) -> int:
        with self._engine.begin() as conn:
            stored = conn.execute(
                sa.select(t.meta.c.value).where(t.meta.c.name == _OWNER_VERSION)
            ).scalar_one_or_none()
            if stored is None:
                stored = str(self._hasher.current)
                try:
                    with conn.begin_nested():
                        conn.execute(t.meta.insert().values(name=_OWNER_VERSION, value=stored))
                except IntegrityError:
                    stored = conn.execute(
                        sa.select(t.meta.c.value).where(t.meta.c.name == _OWNER_VERSION)
                    ).scalar_one()
        version = int(stored)
        self._hasher.digest("", version=version)  # fails now, clearly, if that key is missing
        return version

    @staticmethod
    def _is_erased(conn: sa.Connection, owner: str) -> bool:
        erased_at = conn.execute(
            sa.select(t.erasures.c.erased_at).where(t.erasures.c.owner == owner)
        ).scalar_one_or_none()
        return erased_at is not None

    @classmethod
    def _refuse_if_erased(cls, conn: sa.Connection, owner: str) -> None:
        if cls._is_erased(conn, owner):
            raise ErasedError("this user's data was erased; nothing is held to read or write")

    @staticmethod
    def _data_key(conn: sa.Connection, owner: str) -> WrappedKey | None:
        row = conn.execute(
            sa.select(t.data_keys.c.kek_id, t.data_keys.c.wrapped).where(
                t.data_keys.c.owner == owner
            )
        ).one_or_none()
        return None if row is None else WrappedKey(owner, row.kek_id, row.wrapped)

    def _create_data_key(self, conn: sa.Connection, owner: str, now: float) -> WrappedKey:
        kek_id, wrapped = self._keyring.wrap(self._keyring.new_data_key(), owner=owner)
        values = {"owner": owner, "kek_id": kek_id, "wrapped": wrapped}
        try:
            with conn.begin_nested():
                conn.execute(t.data_keys.insert().values(**values, created_at=now, wrapped_at=now))
        except IntegrityError:
            # Another writer created this owner's key first: use theirs.
            existing = self._data_key(conn, owner)
            if existing is None:
                raise VaultError("could not create or find the owner's data key") from None
            return existing
        return WrappedKey(owner, kek_id, wrapped)

    @staticmethod
    def _insert_record(conn: sa.Connection, meta: RecordMeta, now: float, sealed: bytes) -> None:
        values = {
            "id": meta.id,
            "owner": meta.owner,
            "data_class": meta.data_class,
            "residency": meta.residency,
            "media_type": meta.media_type,
            "created_at": now,
            "sealed": sealed,
        }
        try:
            with conn.begin_nested():
                conn.execute(t.records.insert().values(**values))
        except IntegrityError as exc:
            raise VaultError(
                f"record {meta.id!r} already exists; record ids are never reused"
            ) from exc

    def _shred(self, conn: sa.Connection, owner: str) -> Any:
        """Delete the owner's key and records and leave a tombstone; return the tombstone."""
        query = sa.select(t.records.c.data_class).where(t.records.c.owner == owner).distinct()
        classes = ",".join(sorted(conn.execute(query).scalars()))
        removed = conn.execute(t.records.delete().where(t.records.c.owner == owner)).rowcount
        conn.execute(t.data_keys.delete().where(t.data_keys.c.owner == owner))
        values = {"owner": owner, "erased_at": self._clock(), "records": removed}
        conn.execute(t.erasures.insert().values(**values, data_classes=classes))
        return conn.execute(sa.select(t.erasures).where(t.erasures.c.owner == owner)).one()

    def _rewrap_batch(self, new_kek_id: str) -> int:
        now = self._clock()
        with self._engine.begin() as conn:
            rows = conn.execute(
                sa.select(t.data_keys.c.owner, t.data_keys.c.kek_id, t.data_keys.c.wrapped)
                .where(t.data_keys.c.kek_id != new_kek_id)
                .order_by(t.data_keys.c.owner)
                .limit(_ROTATION_BATCH)
            ).all()
            for row in rows:
                data_key = self._keyring.unwrap(row.wrapped, owner=row.owner, kek_id=row.kek_id)
                _, wrapped = self._keyring.wrap(data_key, owner=row.owner, kek_id=new_kek_id)
                conn.execute(
                    t.data_keys.update()
                    .where(t.data_keys.c.owner == row.owner, t.data_keys.c.kek_id == row.kek_id)
                    .values(kek_id=new_kek_id, wrapped=wrapped, wrapped_at=now)
                )
        return len(rows)


def _expect(request: AccessRequest, action: Action, *, user_level: bool) -> str:
    """Reject a malformed request before it reaches the policy point; return the owner id."""
    resource = request.resource
    owner = resource.owner
    if request.action is not action:
        raise VaultError(f"this operation needs a {action.value} request, not {request.action}")
    if not owner:
        raise VaultError("a vault request must name the owner of the data")
    if not 0 < len(resource.residency) <= 16:
        raise VaultError("a vault request must name the data's residency (at most 16 characters)")
    if not resource.data_class.personal:
        raise VaultError(f"the vault holds personal data only, not {resource.data_class.value}")
    if user_level and resource.id != user_scope(owner):
        raise VaultError(f"this operation needs the user scope {user_scope(owner)!r}")
    if not user_level and not _valid_record_id(resource.id):
        raise VaultError(
            f"record ids are 1–{MAX_RECORD_ID} characters, not starting {USER_SCOPE_PREFIX!r}"
        )
    return owner


def _valid_record_id(record_id: str) -> bool:
    return 0 < len(record_id) <= MAX_RECORD_ID and not record_id.startswith(USER_SCOPE_PREFIX)


def _meta(row: Any) -> RecordMeta:
    return RecordMeta(row.id, row.owner, row.data_class, row.residency, row.media_type)


def _record(row: Any, data: bytes) -> VaultRecord:
    return VaultRecord(
        row.id, DataClass(row.data_class), row.residency, row.media_type, row.created_at, data
    )

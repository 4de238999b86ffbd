"""Envelope encryption: per-owner data keys under custodian KEKs (AES-256-GCM).

Why AES-GCM for wrapping too (rather than RFC 3394 key wrap): GCM takes
associated data, so a wrapped key is bound to its owner and KEK id and cannot
be swapped onto another owner's row. Every nonce is 96 random bits; with one
data key per owner and a few million records per key the collision bound
(2^-32 at 2^32 messages per key) is far away.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trustfeed.custody.vault._errors import VaultError

KEY_BYTES = 32
NONCE_BYTES = 12
_DATA_KEY_LABEL = "trustfeed.vault.data-key"
_RECORD_LABEL = "trustfeed.vault.record"
_AAD_VERSION = 1


@dataclass(frozen=True, slots=True)
class RecordMeta:
    """What a record's ciphertext is bound to: moving it anywhere else breaks the tag."""

    id: str
    owner: str
    data_class: str
    residency: str
    media_type: str


def _aad(label: str, **fields: str) -> bytes:
    # Canonical JSON: unambiguous field boundaries, unlike string concatenation.
    body = {"label": label, "v": _AAD_VERSION, **fields}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def record_aad(meta: RecordMeta) -> bytes:
    return _aad(
        _RECORD_LABEL,
        id=meta.id,
        owner=meta.owner,
        data_class=meta.data_class,
        residency=meta.residency,
        media_type=meta.media_type,
    )


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < NONCE_BYTES + 16:
        raise InvalidTag
    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)


def seal_record(data_key: bytes, meta: RecordMeta, plaintext: bytes) -> bytes:
    """``nonce ‖ ciphertext ‖ tag`` of one record under its owner's data key."""
    return _seal(data_key, plaintext, record_aad(meta))


def open_record(data_key: bytes, meta: RecordMeta, sealed: bytes) -> bytes:
    """The plaintext, or VaultError when the ciphertext or its metadata was altered."""
    try:
        return _open(data_key, sealed, record_aad(meta))
    except InvalidTag as exc:
        raise VaultError(
            f"record {meta.id!r} does not decrypt: its ciphertext or metadata was altered"
        ) from exc


class KeyRing:
    """The custodian KEKs; wraps and unwraps per-owner data keys."""

    def __init__(self, keks: Mapping[str, bytes], *, current: str) -> None:
        if current not in keks:
            raise VaultError(f"no KEK with the current id {current!r}")
        for kek_id, kek in keks.items():
            if len(kek) != KEY_BYTES:
                raise VaultError(f"KEK {kek_id!r} is {len(kek)} bytes; AES-256 needs {KEY_BYTES}")
        self._keks = dict(keks)
        self.current = current

    def __repr__(self) -> str:
        return f"KeyRing(keks={sorted(self._keks)}, current={self.current!r})"

    def knows(self, kek_id: str) -> bool:
        return kek_id in self._keks

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=8 * KEY_BYTES)

    def wrap(self, data_key: bytes, *, owner: str, kek_id: str | None = None) -> tuple[str, bytes]:
        """``(kek_id, wrapped)`` under ``kek_id`` (default: the current KEK)."""
        kek_id = self.current if kek_id is None else kek_id
        kek = self._kek(kek_id)
        return kek_id, _seal(kek, data_key, _aad(_DATA_KEY_LABEL, owner=owner, kek=kek_id))

    def unwrap(self, wrapped: bytes, *, owner: str, kek_id: str) -> bytes:
        kek = self._kek(kek_id)
        try:
            return _open(kek, wrapped, _aad(_DATA_KEY_LABEL, owner=owner, kek=kek_id))
        except InvalidTag as exc:
            raise VaultError(
                f"the data key of owner {owner[:11]}… does not unwrap under KEK {kek_id!r}"
            ) from exc

    def _kek(self, kek_id: str) -> bytes:
        kek = self._keks.get(kek_id)
        if kek is None:
            raise VaultError(f"no KEK {kek_id!r} loaded; load the key file that holds it")
        return kek

"""The custodian key file: the vault's key-encryption keys and the pseudonym keys.

Only the CLI and the service entry point read it; library code receives the
keys as keyword arguments. The file is versioned JSON, created with mode 0600,
and refused when group or others can read it: a key file anyone on the
machine can copy protects nothing.

Format (version 1)::

    {"format": "trustfeed.custodian-keys", "version": 1,
     "keks": {"kek-1": "<base64 of 32 bytes>"}, "current_kek": "kek-1",
     "pseudonym_keys": {"1": "<base64 of 32 bytes>"}, "current_pseudonym": 1}
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustfeed.custody._errors import CustodyError
from trustfeed.custody._keyed import KeyedHasher
from trustfeed.custody._private_file import write_private

FORMAT = "trustfeed.custodian-keys"
FORMAT_VERSION = 1
#: AES-256 keys for the KEKs; HMAC-SHA256 keys of the same length for pseudonyms.
KEY_BYTES = 32


class KeyfileError(CustodyError):
    """The key file is missing, unreadable, too open, or not a valid key file."""


@dataclass(frozen=True)
class CustodianKeys:
    """The keys in one key file. ``repr`` never shows key bytes."""

    keks: Mapping[str, bytes]
    current_kek: str
    pseudonym_keys: Mapping[int, bytes]
    current_pseudonym: int

    def __repr__(self) -> str:
        return (
            f"CustodianKeys(keks={sorted(self.keks)}, current_kek={self.current_kek!r}, "
            f"pseudonym_versions={sorted(self.pseudonym_keys)}, "
            f"current_pseudonym={self.current_pseudonym})"
        )

    def hasher(self) -> KeyedHasher:
        """The keyed hasher for owner hashes and training pseudonyms."""
        return KeyedHasher(self.pseudonym_keys, current=self.current_pseudonym)


def generate_keyfile(path: str | Path) -> CustodianKeys:
    """Write a fresh key file (one KEK, one pseudonym key) and return its keys.

    Refuses to overwrite: replacing a key file would make every wrapped data
    key undecryptable, which is an erasure of everyone.
    """
    keys = CustodianKeys(
        keks={"kek-1": secrets.token_bytes(KEY_BYTES)},
        current_kek="kek-1",
        pseudonym_keys={1: secrets.token_bytes(KEY_BYTES)},
        current_pseudonym=1,
    )
    _write_new(Path(path), keys)
    return keys


def add_kek(path: str | Path, kek_id: str | None = None) -> str:
    """Add a fresh KEK to an existing key file and make it current; return its id.

    Old KEKs stay in the file: data keys wrapped under them must still open
    until :meth:`Vault.rotate_kek` has rewrapped them.
    """
    keys = load_keyfile(path)
    new_id = kek_id or f"kek-{len(keys.keks) + 1}"
    if new_id in keys.keks:
        raise KeyfileError(f"{path}: KEK {new_id!r} already exists")
    updated = CustodianKeys(
        keks={**keys.keks, new_id: secrets.token_bytes(KEY_BYTES)},
        current_kek=new_id,
        pseudonym_keys=keys.pseudonym_keys,
        current_pseudonym=keys.current_pseudonym,
    )
    _replace(Path(path), updated)
    return new_id


def load_keyfile(path: str | Path) -> CustodianKeys:
    """Read and validate a key file; every problem is one clear KeyfileError."""
    document = _read_document(Path(path))
    try:
        return _parse(document)
    except KeyfileError as exc:
        raise KeyfileError(f"{path}: {exc}") from exc


def _read_document(path: Path) -> Any:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise KeyfileError(f"key file {path} not found (create one with generate_keyfile)") from exc
    except OSError as exc:
        raise KeyfileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyfileError(
            f"key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise KeyfileError(f"cannot read key file {path}: {exc.strerror}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyfileError(f"key file {path} is not valid JSON: {exc}") from exc


def _parse(document: Any) -> CustodianKeys:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyfileError(f"not a trustfeed key file (expected format {FORMAT!r})")
    if document.get("version") != FORMAT_VERSION:
        raise KeyfileError(f"unsupported key file version {document.get('version')!r}")
    keks = {str(k): _decode_key(f"KEK {k!r}", v) for k, v in _mapping(document, "keks").items()}
    pseudonym_keys = {
        _version(v): _decode_key(f"pseudonym key {v!r}", key)
        for v, key in _mapping(document, "pseudonym_keys").items()
    }
    current_kek = document.get("current_kek")
    if current_kek not in keks:
        raise KeyfileError(f"current_kek {current_kek!r} is not one of the KEKs")
    current_pseudonym = document.get("current_pseudonym")
    if current_pseudonym not in pseudonym_keys:
        raise KeyfileError(
            f"current_pseudonym {current_pseudonym!r} is not a pseudonym key version"
        )
    return CustodianKeys(keks, current_kek, pseudonym_keys, current_pseudonym)


def _mapping(document: dict[str, Any], name: str) -> dict[str, Any]:
    value = document.get(name)
    if not isinstance(value, dict) or not value:
        raise KeyfileError(f"{name!r} must be a non-empty object")
    return value


def _version(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise KeyfileError(f"pseudonym key version {text!r} is not a positive integer")
    return int(text)


def _decode_key(what: str, text: Any) -> bytes:
    if not isinstance(text, str):
        raise KeyfileError(f"{what} must be a base64 string")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyfileError(f"{what} is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise KeyfileError(f"{what} is {len(key)} bytes; keys must be {KEY_BYTES} bytes")
    return key


def _encode(keys: CustodianKeys) -> bytes:
    def b64(key: bytes) -> str:
        return base64.b64encode(key).decode()

    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "keks": {kek_id: b64(key) for kek_id, key in keys.keks.items()},
        "current_kek": keys.current_kek,
        "pseudonym_keys": {str(v): b64(key) for v, key in keys.pseudonym_keys.items()},
        "current_pseudonym": keys.current_pseudonym,
    }
    return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"


def _write_new(path: Path, keys: CustodianKeys) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_private(path, _encode(keys))
    except FileExistsError as exc:
        raise KeyfileError(f"key file {path} already exists; refusing to overwrite it") from exc


def _replace(path: Path, keys: CustodianKeys) -> None:
    # Write beside, fsync, then rename: a crash leaves the old file or the new one.
    staging = path.with_name(path.name + ".new")
    staging.unlink(missing_ok=True)
    _write_new(staging, keys)
    os.replace(staging, path)

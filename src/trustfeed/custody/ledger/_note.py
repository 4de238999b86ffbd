"""Signed notes, their keys, and the checkpoint and cosignature formats (C2SP).

Formats, so that Go tooling (golang.org/x/mod/sumdb/note, sigsum, the
transparency-dev witnesses) reads what we write:

* signed note (c2sp.org/signed-note): ``body`` + ``"\\n"`` + one line per
  signature, ``— <name> <base64(4-byte key id ‖ signature)>``;
* checkpoint body (c2sp.org/tlog-checkpoint): origin, decimal size, base64
  root hash, optional extension lines;
* log keys (Ed25519, algorithm 0x01): verifier ``<name>+<hex key id>+<base64(0x01 ‖ public
  key)>``, signer ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>``,
  key id = SHA-256(name ‖ "\\n" ‖ 0x01 ‖ public key)[:4];
* cosigner keys (c2sp.org/tlog-cosignature v1, algorithm 0x04): same text shapes
  with 0x04; the signature is key id ‖ 8-byte big-endian timestamp ‖ Ed25519
  over ``"cosignature/v1\\ntime <secs>\\n"`` + note body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trustfeed.custody._errors import LedgerError, VerificationError
from trustfeed.custody.ledger._merkle import HASH_SIZE

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_ALGORITHMS = {ALG_ED25519: "Ed25519", ALG_COSIGNATURE_V1: "cosignature/v1 (Ed25519)"}
_SIG_PREFIX = "— "
_MAX_SIGNATURES = 100


class KeyFormatError(LedgerError, ValueError):
    """A signer or verifier key text that cannot be parsed or does not match its key id."""


# ----------------------------------------------------------------------------- keys


def key_id(name: str, algorithm: int, public_key: bytes) -> bytes:
    """SHA-256(name ‖ "\\n" ‖ algorithm ‖ public key)[:4]: binds a key to its name."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([algorithm]) + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A public key that checks note signatures of one name."""

    name: str
    algorithm: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.algorithm, self.public_key)

    def text(self) -> str:
        """The verifier key in the Go ``note`` text form."""
        data = base64.b64encode(bytes([self.algorithm]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{data}"

    def verify(self, body: bytes, signature: bytes) -> int | None:
        """Check ``signature`` (without key id) over ``body``; return a cosignature's timestamp.

        Raises VerificationError when it does not verify.
        """
        message, sig, timestamp = body, signature, None
        if self.algorithm == ALG_COSIGNATURE_V1:
            if len(signature) != 8 + 64:
                raise VerificationError(f"cosignature by {self.name} has the wrong length")
            timestamp = int.from_bytes(signature[:8], "big")
            message, sig = _cosigned_message(body, timestamp), signature[8:]
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(sig, message)
        except InvalidSignature as exc:
            raise VerificationError(f"signature by {self.name} does not verify") from exc
        return timestamp


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes under one name (keep its text secret)."""

    name: str
    algorithm: int
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.algorithm, _raw_public(self.private_key.public_key()))

    @property
    def key_id(self) -> bytes:
        return self.verifier.key_id

    def text(self) -> str:
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        data = base64.b64encode(bytes([self.algorithm]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{data}"

    def sign(self, body: bytes, *, timestamp: int | None = None) -> bytes:
        """The signature bytes (without key id); cosigners prefix the 8-byte timestamp."""
        if self.algorithm != ALG_COSIGNATURE_V1:
            return self.private_key.sign(body)
        ts = int(time.time()) if timestamp is None else timestamp
        if not 0 <= ts < 2**63:
            raise ValueError("cosignature timestamp out of range")
        return ts.to_bytes(8, "big") + self.private_key.sign(_cosigned_message(body, ts))

    def signature_line(self, body: bytes, *, timestamp: int | None = None) -> str:
        sig = base64.b64encode(self.key_id + self.sign(body, timestamp=timestamp)).decode()
        return f"{_SIG_PREFIX}{self.name} {sig}\n"


def _cosigned_message(body: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime %d\n" % timestamp + body


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise KeyFormatError(f"bad key name {name!r}: non-empty, no spaces and no '+'")


def generate_signing_key(name: str, *, algorithm: int = ALG_ED25519) -> tuple[str, str]:
    """A new (signer text, verifier text) pair; ``algorithm=ALG_COSIGNATURE_V1`` for witnesses."""
    _check_name(name)
    if algorithm not in _ALGORITHMS:
        raise KeyFormatError(f"unsupported key algorithm 0x{algorithm:02x}")
    signer = Signer(name, algorithm, Ed25519PrivateKey.generate())
    return signer.text(), signer.verifier.text()


def generate_cosigner_key(name: str) -> tuple[str, str]:
    """A witness key pair (tlog-cosignature v1, algorithm 0x04)."""
    return generate_signing_key(name, algorithm=ALG_COSIGNATURE_V1)


def _split_key(text: str, parts: int, what: str) -> list[str]:
    # The base64 field may itself contain '+': split only the leading fields (as Go does).
    fields = text.strip().split("+", parts - 1)
    if len(fields) != parts:
        raise KeyFormatError(f"not a {what} key (expected {parts} '+'-separated fields)")
    return fields


def _decode_key_data(name: str, hex_id: str, data: str, what: str) -> tuple[int, bytes, bytes]:
    _check_name(name)
    try:
        want_id = bytes.fromhex(hex_id)
        raw = base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyFormatError(f"{what} key for {name!r} is not valid hex/base64") from exc
    if len(want_id) != 4 or len(raw) != 33 or raw[0] not in _ALGORITHMS:
        raise KeyFormatError(f"{what} key for {name!r} has a bad key id, length or algorithm")
    return raw[0], raw[1:], want_id


def parse_verifier(text: str) -> Verifier:
    """Parse ``<name>+<hex id>+<base64(alg ‖ public key)>``; the key id must match."""
    if text.startswith("PRIVATE+KEY+"):
        raise KeyFormatError("not a verifier key: this is a private signer key, keep it secret")
    name, hex_id, data = _split_key(text, 3, "verifier")
    algorithm, public, want_id = _decode_key_data(name, hex_id, data, "verifier")
    verifier = Verifier(name, algorithm, public)
    try:
        Ed25519PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise KeyFormatError(f"verifier key for {name!r} is not an Ed25519 key") from exc
    if verifier.key_id != want_id:
        raise KeyFormatError(f"verifier key for {name!r} does not match its key id")
    return verifier


def parse_signer(text: str) -> Signer:
    """Parse ``PRIVATE+KEY+<name>+<hex id>+<base64(alg ‖ seed)>``; the key id must match."""
    fields = _split_key(text, 5, "signer")
    if fields[:2] != ["PRIVATE", "KEY"]:
        raise KeyFormatError("not a signer key (must start with PRIVATE+KEY+)")
    name, hex_id, data = fields[2:]
    algorithm, seed, want_id = _decode_key_data(name, hex_id, data, "signer")
    signer = Signer(name, algorithm, Ed25519PrivateKey.from_private_bytes(seed))
    if signer.key_id != want_id:
        raise KeyFormatError(f"signer key for {name!r} does not match its key id")
    return signer


# ----------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line; ``verified`` says a given verifier checked it."""

    name: str
    key_id: bytes
    signature: bytes
    verified: bool = False
    timestamp: int | None = None


@dataclass(frozen=True)
class Note:
    """An opened note: its body text and its signature lines."""

    body: str
    signatures: tuple[NoteSignature, ...]

    @property
    def verified_names(self) -> list[str]:
        return [s.name for s in self.signatures if s.verified]


def sign_note(body: str, signers: Iterable[Signer], *, timestamp: int | None = None) -> str:
    """The note text: ``body``, a blank line, then one signature line per signer."""
    _check_body(body)
    raw = body.encode()
    lines = [s.signature_line(raw, timestamp=timestamp) for s in signers]
    if not lines:
        raise ValueError("a note needs at least one signer")
    return body + "\n" + "".join(lines)


def add_signature_lines(note: str, lines: Iterable[str]) -> str:
    """The note with more signature lines (e.g. witness cosignatures) appended."""
    parse_note(note)
    return note + "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _check_body(body: str) -> None:
    if not body.endswith("\n") or "\n\n" in body:
        raise VerificationError("malformed note: body must end in a newline, no blank lines")
    if any((ord(c) < 0x20 and c != "\n") or c == "\x7f" for c in body):
        raise VerificationError("malformed note: control characters in the body")


def parse_note(text: str) -> tuple[str, list[NoteSignature]]:
    """Split a note into body and (unverified) signature lines; reject malformed notes."""
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise VerificationError("malformed note: no blank line before the signatures")
    body, sig_text = text[: split + 1], text[split + 2 :]
    _check_body(body)
    lines = sig_text.splitlines(keepends=True)
    if not lines or len(lines) > _MAX_SIGNATURES:
        raise VerificationError("malformed note: needs 1 to 100 signature lines")
    return body, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX) or not line.endswith("\n"):
        raise VerificationError(f"malformed signature line {line!r}")
    name, _, data = line[len(_SIG_PREFIX) : -1].partition(" ")
    try:
        _check_name(name)
        raw = base64.b64decode(data, validate=True)
    except (KeyFormatError, binascii.Error) as exc:
        raise VerificationError(f"malformed signature line {line!r}") from exc
    if len(raw) < 5:
        raise VerificationError(f"malformed signature line {line!r}: too short")
    return NoteSignature(name, raw[:4], raw[4:])


def open_note(text: str, verifiers: Sequence[Verifier]) -> Note:
    """Parse and verify a note, like Go's ``note.Open``.

    A signature from a known (name, key id) that does not verify is an error;
    lines from keys we were not given are kept unverified (witnesses we do not
    know may cosign); at least one given verifier must have signed.
    """
    body, sigs = parse_note(text)
    known = {(v.name, v.key_id): v for v in verifiers}
    seen: set[tuple[str, bytes]] = set()
    opened = []
    for sig in sigs:
        key = (sig.name, sig.key_id)
        if key in seen:
            raise VerificationError(f"malformed note: two signatures by {sig.name}")
        seen.add(key)
        verifier = known.get(key)
        if verifier is None:
            opened.append(sig)
            continue
        timestamp = verifier.verify(body.encode(), sig.signature)
        opened.append(NoteSignature(sig.name, sig.key_id, sig.signature, True, timestamp))
    note = Note(body, tuple(opened))
    if not note.verified_names:
        raise VerificationError("note has no signature from a known key")
    return note


def verify_note(text: str, verifiers: Sequence[Verifier]) -> Note:
    """Like :func:`open_note`, but every given verifier must have signed (the auditor's rule)."""
    note = open_note(text, verifiers)
    signed = {(s.name, s.key_id) for s in note.signatures if s.verified}
    missing = [v.name for v in verifiers if (v.name, v.key_id) not in signed]
    if missing:
        raise VerificationError(f"note lacks a valid signature by {', '.join(missing)}")
    return note


# ----------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """The signed statement of a tree head (c2sp.org/tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        _check_body(body)
        lines = body[:-1].split("\n")
        if len(lines) < 3 or not lines[0]:
            raise VerificationError("malformed checkpoint: needs origin, size and root lines")
        origin, size_text, root_text = lines[:3]
        if not size_text.isascii() or not size_text.isdigit() or size_text != str(int(size_text)):
            raise VerificationError(f"malformed checkpoint: bad tree size {size_text!r}")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error as exc:
            raise VerificationError("malformed checkpoint: root is not base64") from exc
        if len(root) != HASH_SIZE:
            raise VerificationError("malformed checkpoint: root is not 32 bytes")
        return cls(origin, int(size_text), root, tuple(lines[3:]))


def open_checkpoint(text: str, verifiers: Sequence[Verifier]) -> tuple[Checkpoint, Note]:
    """Verify a checkpoint note (every given key must have signed) and parse its body."""
    note = verify_note(text, verifiers)
    return Checkpoint.parse(note.body), note

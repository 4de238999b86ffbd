"""Signal types: how a piece of media becomes comparable hashes.

The protocol follows ThreatExchange's ``signal_type/signal_base.py``: each
type has a name, hashes bytes, validates and compares hash strings, and names
its match threshold, so a new signal (vPDQ, a text hash) plugs into banks and
rules without touching them. Types whose hash has several variants per file
(PDQ's eight rotations/flips) return them all from ``hash_bytes``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from trustfeed.moderation._errors import InvalidSignal


@dataclass(frozen=True)
class SignalValue:
    """One hash of one file: ``variant`` 0 is the file as uploaded.

    ``quality`` is the hasher's own confidence (PDQ: 0–100) or None where the
    type has none; a value below its type's ``min_quality`` is kept for the
    record but never matched.
    """

    signal: str
    value: str
    variant: int = 0
    quality: int | None = None


@dataclass(frozen=True)
class Comparison:
    """The result of comparing two hashes of one signal type."""

    match: bool
    distance: int


class SignalType(Protocol):
    """A kind of hash: what banks store and uploads are matched by."""

    name: ClassVar[str]
    #: Distance at or below which two hashes match, unless a bank sets its own.
    threshold: ClassVar[int]
    #: Hashes with a lower quality are recorded but not used for matching.
    min_quality: ClassVar[int]

    def hash_bytes(self, data: bytes) -> list[SignalValue]:
        """The hashes of one file (several where the type hashes variants)."""
        ...

    def validate(self, value: str) -> str:
        """The canonical form of ``value``, or raise :class:`InvalidSignal`."""
        ...

    def compare(self, a: str, b: str, threshold: int | None = None) -> Comparison:
        """Whether ``a`` and ``b`` match at ``threshold`` (default: the type's), and how far."""
        ...

    def examples(self) -> list[str]:
        """Valid example values, for tests and documentation."""
        ...


def hamming_hex(a: str, b: str) -> int:
    """Bits that differ between two equal-length hex strings.

    >>> hamming_hex("ff00", "0f01")
    5
    """
    if len(a) != len(b):
        raise InvalidSignal(f"hashes of different lengths: {len(a)} and {len(b)} hex digits")
    return (int(a, 16) ^ int(b, 16)).bit_count()


class _ExactDigest:
    """Cryptographic digest: a match means the same bytes, nothing looser."""

    name: ClassVar[str]
    threshold: ClassVar[int] = 0
    min_quality: ClassVar[int] = 0
    _hex_len: ClassVar[int]

    def hash_bytes(self, data: bytes) -> list[SignalValue]:
        return [SignalValue(self.name, hashlib.new(self.name, data).hexdigest())]

    def hash_file(self, path: str | Path) -> list[SignalValue]:
        return self.hash_bytes(Path(path).read_bytes())

    def validate(self, value: str) -> str:
        value = value.strip().lower()
        if not re.fullmatch(f"[0-9a-f]{{{self._hex_len}}}", value):
            raise InvalidSignal(f"not a {self.name} hash: {value[:80]!r}")
        return value

    def compare(self, a: str, b: str, threshold: int | None = None) -> Comparison:
        del threshold  # exact: only equality matches
        same = self.validate(a) == self.validate(b)
        return Comparison(same, 0 if same else hamming_hex(a.lower(), b.lower()))

    def examples(self) -> list[str]:
        return [hashlib.new(self.name, b"").hexdigest(), hashlib.new(self.name, b"a").hexdigest()]


class MD5Signal(_ExactDigest):
    """MD5 of the file's bytes: the format most shared hash lists still use."""

    name: ClassVar[str] = "md5"
    _hex_len: ClassVar[int] = 32


class SHA256Signal(_ExactDigest):
    """SHA-256 of the file's bytes: exact identity without MD5's collisions."""

    name: ClassVar[str] = "sha256"
    _hex_len: ClassVar[int] = 64

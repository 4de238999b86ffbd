"""Keyed hashes under versioned custodian keys (HMAC-SHA256).

Used wherever an id must be recognisable without being revealed: resources in
policy-decision records, and user/item pseudonyms in the training stream. The
version travels with every digest so keys can rotate without ambiguity.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from trustfeed.custody._errors import CustodyError

MIN_KEY_BYTES = 32


class KeyedHasher:
    """HMAC-SHA256 of ids under the current key version; older versions still verify.

    >>> h = KeyedHasher({1: bytes(32)}, current=1)
    >>> h.digest("user-42")[:11]
    'k1:a23888e1'
    """

    def __init__(self, keys: Mapping[int, bytes], *, current: int) -> None:
        if current not in keys:
            raise CustodyError(f"no key for current version {current}")
        for version, key in keys.items():
            if len(key) < MIN_KEY_BYTES:
                raise CustodyError(f"key version {version} is shorter than {MIN_KEY_BYTES} bytes")
        self._keys = dict(keys)
        self.current = current

    @classmethod
    def generate(cls) -> KeyedHasher:
        """A hasher with one fresh random key (version 1)."""
        return cls({1: secrets.token_bytes(MIN_KEY_BYTES)}, current=1)

    def digest(self, value: str, *, version: int | None = None) -> str:
        """``k<version>:<hex>``; the same value and key always give the same digest."""
        version = self.current if version is None else version
        key = self._keys.get(version)
        if key is None:
            raise CustodyError(f"no key version {version}")
        mac = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
        return f"k{version}:{mac}"

    def matches(self, value: str, digest: str) -> bool:
        """Whether ``digest`` is ``value`` under the key version it names (constant time)."""
        version_text, _, _ = digest.partition(":")
        if not version_text.startswith("k") or not version_text[1:].isdigit():
            return False
        version = int(version_text[1:])
        if version not in self._keys:
            return False
        return hmac.compare_digest(self.digest(value, version=version), digest)

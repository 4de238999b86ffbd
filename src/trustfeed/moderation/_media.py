"""The registry of signal types and hashing a file with all of them."""

from __future__ import annotations

from trustfeed.moderation._errors import UnsupportedMedia
from trustfeed.moderation._pdq import PDQSignal
from trustfeed.moderation._signals import MD5Signal, SHA256Signal, SignalType, SignalValue
from trustfeed.moderation._vpdq import is_video

#: Every signal type by name; vPDQ and text hashes register here when they exist.
SIGNAL_TYPES: dict[str, SignalType] = {
    s.name: s for s in (MD5Signal(), SHA256Signal(), PDQSignal())
}


def signal_type(name: str) -> SignalType:
    """The signal type called ``name``, or a clear error listing the known ones."""
    try:
        return SIGNAL_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(SIGNAL_TYPES))
        raise UnsupportedMedia(f"unknown signal type {name!r}; known: {known}") from None


def hash_media(data: bytes) -> list[SignalValue]:
    """Every signal of an uploaded image: md5, sha256 and PDQ's 8 variants.

    Raises :class:`UnsupportedMedia` when the bytes are not an image PDQ can
    read; the gate treats that like any failed step (fail closed).
    """
    if not data:
        raise UnsupportedMedia("empty file")
    if is_video(data):
        # Videos have their own path: vPDQ frames are stored per frame, not as one value.
        raise UnsupportedMedia("a video: hash it with vPDQ (`trustfeed moderation vpdq`)")
    values: list[SignalValue] = []
    for kind in SIGNAL_TYPES.values():
        values.extend(kind.hash_bytes(data))
    return values

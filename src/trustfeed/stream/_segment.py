"""The local log's on-disk format: segment files of CRC-framed records.

A segment file is named by the offset of its first record (20 digits, so names
sort by offset) and starts with a 16-byte header: ``TFLOG\\0``, a format
version (u16) and the base offset (u64). Each record follows as one frame::

    crc32 u32 | offset u64 | payload_len u32 | key_len u16 | key | payload

little-endian, the CRC over everything after itself. The offset is stored
although it is implied, so a stale or misplaced frame never verifies.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trustfeed.stream._base import MAX_KEY_LENGTH, MAX_PAYLOAD_BYTES, Record

MAGIC = b"TFLOG\x00"
VERSION = 1
SUFFIX = ".seg"
_HEADER = struct.Struct("<6sHQ")
_FRAME = struct.Struct("<IQIH")
HEADER_SIZE = _HEADER.size
FRAME_OVERHEAD = _FRAME.size


@dataclass(eq=False)
class Segment:
    """One segment: where each record starts, and the bytes written or buffered so far.

    ``fd`` is -1 until the writer creates the file; readers never reach such a
    segment because they stop at the last durable offset.
    """

    base: int
    path: Path
    fd: int = -1
    size: int = HEADER_SIZE
    starts: array[int] = field(default_factory=lambda: array("Q"))

    @property
    def count(self) -> int:
        return len(self.starts)

    def end_of(self, index: int) -> int:
        """The byte just past record ``index`` (the next start, or the segment's end)."""
        return self.starts[index + 1] if index + 1 < len(self.starts) else self.size


def segment_path(directory: Path, base: int) -> Path:
    return directory / f"{base:020d}{SUFFIX}"


def segment_header(base: int) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, base)


def encode(offset: int, key: bytes, payload: bytes) -> bytes:
    body = _FRAME.pack(0, offset, len(payload), len(key))[4:] + key + payload
    return struct.pack("<I", zlib.crc32(body)) + body


@dataclass(frozen=True)
class Scan:
    """What a segment holds: its record starts, keys, and where the valid data ends.

    ``problem`` says why the scan stopped before the end of the file (None when
    every byte verified).
    """

    starts: array[int]
    keys: list[str]
    valid_end: int
    problem: str | None


def check_header(data: bytes, base: int) -> str | None:
    """None when ``data`` starts with this segment's header, else what is wrong."""
    if len(data) < HEADER_SIZE:
        return f"header cut short ({len(data)} of {HEADER_SIZE} bytes)"
    magic, version, stored_base = _HEADER.unpack_from(data)
    if magic != MAGIC:
        return "not a trustfeed log segment (bad magic)"
    if version != VERSION:
        return f"segment format version {version}; this build reads {VERSION}"
    if stored_base != base:
        return f"header names base offset {stored_base}, file name {base}"
    return None


def scan(data: bytes, base: int) -> Scan:
    """Verify every frame after the header of a segment whose first offset is ``base``."""
    starts: array[int] = array("Q")
    keys: list[str] = []
    pos = HEADER_SIZE
    problem = None
    for start, frame in _frames(data, pos, base):
        if isinstance(frame, str):
            problem = frame
            break
        starts.append(start)
        keys.append(frame.key)
        pos = start + FRAME_OVERHEAD + len(frame.key) + len(frame.payload)
    return Scan(starts, keys, pos, problem)


def decode(data: bytes, first_offset: int) -> list[Record]:
    """The records in ``data`` (whole frames, starting at ``first_offset``); verifies each."""
    records = []
    for start, frame in _frames(data, 0, first_offset):
        if isinstance(frame, str):
            raise ValueError(f"at byte {start} of the span read: {frame}")
        records.append(frame)
    return records


def _frames(data: bytes, pos: int, offset: int) -> Iterator[tuple[int, Record | str]]:
    """Each frame from ``pos`` as (start, record), or (start, why it does not verify) last."""
    end = len(data)
    while pos < end:
        frame = _one_frame(data, pos, end, offset)
        yield pos, frame
        if isinstance(frame, str):
            return
        pos += FRAME_OVERHEAD + len(frame.key) + len(frame.payload)
        offset += 1


def _one_frame(data: bytes, pos: int, end: int, offset: int) -> Record | str:
    if end - pos < FRAME_OVERHEAD:
        return f"frame header cut short ({end - pos} bytes)"
    crc, stored_offset, payload_len, key_len = _FRAME.unpack_from(data, pos)
    if not (0 < key_len <= MAX_KEY_LENGTH and 0 < payload_len <= MAX_PAYLOAD_BYTES):
        return f"implausible lengths (key {key_len}, payload {payload_len})"
    stop = pos + FRAME_OVERHEAD + key_len + payload_len
    if stop > end:
        return f"frame cut short ({end - pos} of {stop - pos} bytes)"
    if zlib.crc32(memoryview(data)[pos + 4 : stop]) != crc:
        return "CRC mismatch"
    if stored_offset != offset:
        return f"frame holds offset {stored_offset}, expected {offset}"
    key_start = pos + FRAME_OVERHEAD
    try:
        key = data[key_start : key_start + key_len].decode("ascii")
    except UnicodeDecodeError:
        return "idempotency key is not ASCII"
    return Record(offset, key, data[key_start + key_len : stop])

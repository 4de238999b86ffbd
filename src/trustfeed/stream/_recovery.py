"""Opening a local log after a crash: verify every segment, drop a torn tail.

An append is acknowledged only after its frames are fsynced, and a new segment
is created only after the previous one is fsynced, so anything that does not
verify at the end of the *last* segment was never acknowledged: it is cut off.
A bad frame anywhere else would lose acknowledged events; the log refuses to
open instead (CorruptLogError) so a person can look at it.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from trustfeed.stream._errors import CorruptLogError
from trustfeed.stream._files import fsync_dir
from trustfeed.stream._segment import (
    HEADER_SIZE,
    SUFFIX,
    Segment,
    check_header,
    scan,
    segment_path,
)

log = logging.getLogger(__name__)

_NAME = re.compile(r"\d{20}" + re.escape(SUFFIX))


@dataclass
class Recovered:
    segments: list[Segment]
    keys: dict[str, int]
    last_offset: int


def recover(directory: Path) -> Recovered:
    """Scan ``directory``'s segments in order; the last one is left open for appends."""
    paths = sorted(p for p in directory.iterdir() if _NAME.fullmatch(p.name))
    segments: list[Segment] = []
    keys: dict[str, int] = {}
    expected = 1
    try:
        for index, path in enumerate(paths):
            base = int(path.name[:20])
            if base != expected:
                raise CorruptLogError(
                    f"{path}: segment starts at offset {base}, expected {expected} "
                    "(a segment is missing or misnamed)"
                )
            segment = _open_segment(path, base, is_last=index == len(paths) - 1, keys=keys)
            segments.append(segment)
            expected = base + segment.count
    except BaseException:
        close_all(segments)
        raise
    if not segments:
        segments.append(Segment(1, segment_path(directory, 1)))
    return Recovered(segments, keys, expected - 1)


def close_all(segments: list[Segment]) -> None:
    for segment in segments:
        if segment.fd >= 0:
            os.close(segment.fd)
            segment.fd = -1


def _open_segment(path: Path, base: int, *, is_last: bool, keys: dict[str, int]) -> Segment:
    data = path.read_bytes()
    if is_last and len(data) < HEADER_SIZE:
        # A crash while the file was being created: it never held an acknowledged
        # record. Remove it; the writer creates it again on the next append.
        log.warning("event log: removing %s, a segment cut short at creation", path)
        path.unlink()
        fsync_dir(path.parent)
        return Segment(base, path)
    problem = check_header(data, base)
    if problem is not None:
        raise CorruptLogError(f"{path}: {problem}")
    found = scan(data, base)
    if found.problem is not None:
        if not is_last:
            raise CorruptLogError(
                f"{path}: {found.problem} at byte {found.valid_end}, in a sealed segment; "
                "acknowledged events would be lost, so the log is not opened"
            )
        _truncate(path, found.valid_end, len(data), found.problem)
    for index, key in enumerate(found.keys):
        if keys.setdefault(key, base + index) != base + index:
            log.warning("event log: key %r stored twice; the first offset wins", key)
    flags = os.O_RDWR | os.O_APPEND if is_last else os.O_RDONLY
    return Segment(base, path, os.open(path, flags), found.valid_end, found.starts)


def _truncate(path: Path, valid_end: int, size: int, problem: str) -> None:
    log.warning(
        "event log: %s: dropping a torn tail of %d bytes at byte %d (%s); "
        "it was never acknowledged",
        path,
        size - valid_end,
        valid_end,
        problem,
    )
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, valid_end)
        os.fsync(fd)
    finally:
        os.close(fd)

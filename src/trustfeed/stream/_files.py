"""Small durable-file helpers of the local log: the directory lock and atomic writes."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from trustfeed.stream._errors import LogLockedError


def fsync_dir(directory: Path) -> None:
    """Make a file's creation, rename or removal in ``directory`` survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(directory: Path) -> None:
    """Create ``directory`` (and parents) durably: each new entry's parent is fsynced."""
    missing = []
    probe = directory
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        fsync_dir(path.parent)


def lock_dir(directory: Path) -> int:
    """Take the directory's single-writer lock; return its fd (closing it releases the lock).

    flock locks belong to the open file, so a second open of the same directory
    is refused even inside one process; the holder's pid is kept for the message.
    """
    path = directory / "LOCK"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise LogLockedError(
            f"event log {directory} is open in another process or object (pid {holder}); "
            "only one writer may open it"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def replace_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old or the new content.

    1. write a temporary file beside it and fsync it;
    2. rename it over ``path`` (atomic on POSIX);
    3. fsync the directory, so the rename itself is durable.
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_all(fd: int, data: bytes | bytearray) -> None:
    """os.write may write less than asked (a signal, a full pipe); loop until done."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]

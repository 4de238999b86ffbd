"""The embedded event log: segment files in one directory, fsynced group commits."""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from trustfeed.stream._base import (
    Ack,
    EventLog,
    Record,
    check_batch,
    check_commit,
    check_consumer,
    check_read,
)
from trustfeed.stream._errors import CorruptLogError, InvalidInputError, LogClosedError
from trustfeed.stream._files import fsync_dir, lock_dir, make_dir, write_all
from trustfeed.stream._positions import PositionFiles
from trustfeed.stream._recovery import close_all, recover
from trustfeed.stream._segment import Segment, decode, encode, segment_header, segment_path

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
MIN_SEGMENT_BYTES = 1024

# fdatasync flushes the data and the file size (what a reader needs) without the
# mtime update that fsync also forces; where it is missing, fsync does the job.
_datasync = getattr(os, "fdatasync", os.fsync)


class LocalLog(EventLog):
    """An append-only log in ``directory``; ``append`` returns once its events are fsynced.

    Group commit: a thread that appends while another thread's fsync is running
    buffers its frames and waits; the next fsync makes every buffered frame
    durable at once, so N threads share one fsync instead of queueing for N.

    The directory holds segment files (``_segment.py`` has the format), a
    ``LOCK`` file (one writer per directory) and ``consumers/``. Every
    idempotency key ever stored is kept in memory, so duplicates are refused
    for the log's whole life (unlike JetStream's time window).
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> None:
        if not isinstance(segment_bytes, int) or segment_bytes < MIN_SEGMENT_BYTES:
            raise InvalidInputError(
                f"segment_bytes={segment_bytes!r}: at least {MIN_SEGMENT_BYTES}"
            )
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        make_dir(self._dir)
        self._lock_fd = lock_dir(self._dir)
        try:
            found = recover(self._dir)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._segments = found.segments
        self._bases = [segment.base for segment in self._segments]
        self._keys = found.keys
        self._next = found.last_offset + 1
        self._durable = found.last_offset
        self._cond = threading.Condition()
        self._pending: list[tuple[Segment, bytearray]] = []
        self._syncing = False
        self._failure: str | None = None
        self._closed = False
        self._positions = PositionFiles(self._dir)

    def __repr__(self) -> str:
        return f"LocalLog({str(self._dir)!r})"

    @property
    def directory(self) -> Path:
        return self._dir

    def append(self, batch: Sequence[tuple[str, bytes]]) -> list[Ack]:
        items = check_batch(batch)
        if not items:
            return []
        with self._cond:
            self._check_open()
            acks = [self._buffer(key, payload) for key, payload in items]
            # A duplicate's original may still be in another thread's pending
            # group: wait for it too, or the ack would promise more than the disk has.
            self._wait_durable(max(ack.offset for ack in acks))
        return acks

    def read(self, after: int, limit: int) -> list[Record]:
        check_read(after, limit)
        records: list[Record] = []
        with self._cond:
            self._check_open()
            end = min(self._durable, after + limit)
            offset = after + 1
            while offset <= end:
                segment = self._segments[bisect.bisect_right(self._bases, offset) - 1]
                last = min(end, segment.base + segment.count - 1)
                records.extend(self._read_span(segment, offset, last))
                offset = last + 1
        return records

    def last_offset(self) -> int:
        with self._cond:
            self._check_open()
            return self._durable

    def commit(self, consumer: str, offset: int) -> None:
        check_consumer(consumer)
        check_commit(offset, self.last_offset())
        self._positions.commit(consumer, offset)

    def position(self, consumer: str) -> int:
        check_consumer(consumer)
        self._check_open()
        return self._positions.position(consumer)

    def close(self) -> None:
        """Finish any group in flight, then release the files and the directory lock."""
        with self._cond:
            if self._closed:
                return
            while self._failure is None and (self._syncing or self._pending):
                if self._syncing:
                    self._cond.wait()
                else:
                    self._flush()
            self._closed = True
            close_all(self._segments)
            os.close(self._lock_fd)

    # -- writing (every method below runs with self._cond held) --

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"event log {self._dir} is closed")
        if self._failure is not None:
            raise LogClosedError(self._failure)

    def _buffer(self, key: str, payload: bytes) -> Ack:
        known = self._keys.get(key)
        if known is not None:
            return Ack(known, duplicate=True)
        offset = self._next
        frame = encode(offset, key.encode("ascii"), payload)
        segment = self._segments[-1]
        if segment.count and segment.size + len(frame) > self._segment_bytes:
            segment = self._start_segment(offset)
        segment.starts.append(segment.size)
        segment.size += len(frame)
        if not self._pending or self._pending[-1][0] is not segment:
            self._pending.append((segment, bytearray()))
        self._pending[-1][1].extend(frame)
        self._keys[key] = offset
        self._next = offset + 1
        return Ack(offset, duplicate=False)

    def _start_segment(self, base: int) -> Segment:
        # The file itself is created by the flush that first writes to it.
        segment = Segment(base, segment_path(self._dir, base))
        self._segments.append(segment)
        self._bases.append(base)
        return segment

    def _wait_durable(self, target: int) -> None:
        while self._durable < target:
            if self._failure is not None:
                raise LogClosedError(self._failure)
            if self._syncing:
                self._cond.wait()
            else:
                self._flush()

    def _flush(self) -> None:
        """Lead one group commit: write and fsync everything pending, lock released meanwhile."""
        groups, upto = self._pending, self._next - 1
        self._pending = []
        self._syncing = True
        self._cond.release()
        error: BaseException | None = None
        try:
            _write_groups(self._dir, groups)
        except BaseException as exc:
            error = exc
        finally:
            self._cond.acquire()
            self._syncing = False
            self._cond.notify_all()
        if error is None:
            self._durable = upto
            return
        # After a failed fsync the kernel may have dropped the dirty pages, so no
        # later fsync can vouch for them: stop here; reopening re-verifies the disk.
        self._failure = f"event log {self._dir} failed to write ({error}); reopen it"
        log.error("%s", self._failure)
        if not isinstance(error, OSError):
            raise error

    def _read_span(self, segment: Segment, first: int, last: int) -> list[Record]:
        start = segment.starts[first - segment.base]
        stop = segment.end_of(last - segment.base)
        data = os.pread(segment.fd, stop - start, start)
        try:
            return decode(data, first)
        except ValueError as exc:
            raise CorruptLogError(f"{segment.path}: {exc}") from exc


def _write_groups(directory: Path, groups: list[tuple[Segment, bytearray]]) -> None:
    """Write each group to its segment and fsync it; a new segment also fsyncs the directory."""
    for segment, data in groups:
        created = segment.fd < 0
        if created:
            segment.fd = os.open(
                segment.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644
            )
            data[:0] = segment_header(segment.base)
        write_all(segment.fd, data)
        _datasync(segment.fd)
        if created:
            fsync_dir(directory)

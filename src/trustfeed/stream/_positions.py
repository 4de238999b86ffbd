"""Consumer positions: one small durable JSON file per consumer (local), and their format."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from trustfeed.stream._errors import CorruptLogError
from trustfeed.stream._files import make_dir, replace_durably

_FORMAT = "trustfeed.stream.position"
_VERSION = 1


class PositionFiles:
    """``consumers/<name>.json`` under the log directory, cached after the first read.

    The cache is safe because the directory lock makes this the only writer.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory / "consumers"
        self._lock = threading.Lock()
        self._cache: dict[str, int] = {}

    def commit(self, consumer: str, offset: int) -> None:
        with self._lock:
            if not self._dir.exists():
                make_dir(self._dir)
            replace_durably(self._path(consumer), encode_position(consumer, offset))
            self._cache[consumer] = offset

    def position(self, consumer: str) -> int:
        with self._lock:
            if consumer not in self._cache:
                self._cache[consumer] = self._load(consumer)
            return self._cache[consumer]

    def _path(self, consumer: str) -> Path:
        return self._dir / f"{consumer}.json"

    def _load(self, consumer: str) -> int:
        path = self._path(consumer)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0
        return decode_position(data, where=str(path))


def encode_position(consumer: str, offset: int) -> bytes:
    """Versioned JSON, the same on both backends."""
    body = {"format": _FORMAT, "version": _VERSION, "consumer": consumer, "offset": offset}
    return json.dumps(body).encode()


def decode_position(data: bytes, *, where: str) -> int:
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise CorruptLogError(f"{where}: consumer position is not JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") != _FORMAT:
        raise CorruptLogError(f"{where}: not a trustfeed consumer position")
    if body.get("version") != _VERSION:
        raise CorruptLogError(f"{where}: position format version {body.get('version')!r}")
    offset = body.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise CorruptLogError(f"{where}: bad offset {offset!r}")
    return offset

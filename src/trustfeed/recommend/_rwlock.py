"""A readers-writer lock: many feeds at once, one update at a time.

Serving threads only read the live state, so they may run together (NumPy,
FAISS and LightGBM release the GIL for their heavy parts); an update must see
no reader. Writers are preferred: once one waits, new readers queue behind it,
so a steady stream of feed requests cannot starve ``partial_fit``.

Not re-entrant: a thread holding the lock must not take it again (a nested
read would deadlock against a waiting writer).

>>> lock = ReadWriteLock()
>>> with lock.read():
...     lock.readers
1
>>> with lock.write():
...     lock.writing
True
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Shared ``read()`` / exclusive ``write()`` context managers; writers first."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self.readers = 0
        self.writing = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self.writing or self._writers_waiting:
                self._cond.wait()
            self.readers += 1
        try:
            yield
        finally:
            with self._cond:
                self.readers -= 1
                if not self.readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self.writing or self.readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
                if not self._writers_waiting:
                    self._cond.notify_all()  # readers held back by this writer may go
            self.writing = True
        try:
            yield
        finally:
            with self._cond:
                self.writing = False
                self._cond.notify_all()

"""One mixin for the objects that hold connections: ``with obj:`` closes them."""

from __future__ import annotations

from typing import Self


class Closeable:
    """``__enter__`` returns the object; ``__exit__`` calls its ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

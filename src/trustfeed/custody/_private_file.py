"""Writing secrets and personal data to a new file: mode 0600 from the first byte."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (never over an existing file) readable by its owner only; fsync it.

    O_EXCL refuses an existing file or link, so nothing is clobbered or followed;
    FileExistsError is left to the caller, who knows what the file was for.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())

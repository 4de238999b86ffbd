"""Canonical bytes and digests: the same content always hashes the same, on every machine.

Canonical JSON = sorted keys, no insignificant whitespace, UTF-8, no NaN (the
ledger's records use the same form, see ``trustfeed.custody.encode_record``).
A directory digest is SHA-256 over ``sha256sum``-style lines sorted by path,
so an auditor can recompute a model hash with standard tools::

    (cd MODEL_DIR && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum) | sha256sum
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from trustfeed.recommend.package._errors import IntegrityError


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON bytes.

    >>> canonical_json({"b": 1, "a": [1.5, "é"]})
    b'{"a":[1.5,"\\xc3\\xa9"],"b":1}'
    """
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_sha256_hex(text: object) -> bool:
    """Whether ``text`` is a lowercase 64-digit hex SHA-256 (the form every id here takes)."""
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def check_relative_path(name: str) -> str:
    """A manifest path: relative, POSIX, no ``..``, no empty or hidden-dot parts.

    Why: a manifest is attacker-supplied; a path must never reach outside the package.
    """
    path = PurePosixPath(name)
    if (
        not name
        or name != path.as_posix()
        or path.is_absolute()
        or "\\" in name
        or any(part in ("", ".", "..") for part in path.parts)
    ):
        raise IntegrityError(f"bad file path in package: {name!r}")
    return name


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by relative POSIX path; links and devices refused."""
    if root.is_symlink() or not root.is_dir():
        raise IntegrityError(f"{root} is not a directory")
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise IntegrityError(f"{path} is a link or special file; packages hold plain files")
        if path.is_file():
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def tree_digest(files: Mapping[str, bytes]) -> str:
    """SHA-256 over ``"<sha256>  <path>\\n"`` lines in byte order of the paths."""
    lines = (
        f"{sha256_hex(files[name])}  {name}\n"
        for name in sorted(files, key=lambda n: n.encode("utf-8"))
    )
    return sha256_hex("".join(lines).encode("utf-8"))


def model_hash(path: str | Path) -> str:
    """The hash of a saved model directory (every file, canonical order); see the module doc."""
    files = read_tree(Path(path))
    if not files:
        raise IntegrityError(f"{path} holds no files; nothing to hash")
    return tree_digest(files)

"""Public benchmark datasets, each with the evaluation protocol it is known by.

These read the copies under ``../shared/datasets`` (not shipped: their
licences are for research use); the formats are:

* MovieLens as RecBole atomic files: a directory with ``<name>.inter`` and
  ``<name>.item``, tab separated, headers like ``user_id:token``. The rating
  becomes ``value``; the first genre of ``class`` becomes the item's ``topic``.
* Sequence files (Amazon Beauty, LastFM as preprocessed by the S3-Rec
  authors): one line per user, ``user item item ...`` in time order. They
  carry no clock, so ``timestamp`` is the 0-based position in the user's
  sequence. Item attributes come from ``<stem>_item2attributes.json``
  beside the file (``{"item": [attribute ids]}``) when it exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trustfeed.data._files import read_delimited
from trustfeed.data._schema import DataError
from trustfeed.data._split import SplitProtocol, split_for
from trustfeed.data._validate import _int64_column, _validate, _Where


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions, optional item metadata, and the split its benchmarks use."""

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame | None
    protocol: SplitProtocol

    def split(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Train and test by :attr:`protocol` (see :func:`~trustfeed.data.split_for`)."""
        return split_for(self.protocol)(self.interactions)


def load_movielens(path: str | Path) -> Dataset:
    """MovieLens from a directory of RecBole atomic files (protocol ``temporal``)."""
    directory = Path(path)
    inter_files = sorted(directory.glob("*.inter"))
    if len(inter_files) != 1:
        raise DataError(f"{directory}: expected one *.inter file, found {len(inter_files)}")
    inter = inter_files[0]
    frame, lines = _read_atomic(inter)
    frame = frame.rename(columns={"rating": "value"})
    interactions = _validate(frame, _Where(str(inter), lines, "line"))
    item_file = inter.with_suffix(".item")
    items = _movielens_items(item_file) if item_file.exists() else None
    return Dataset(directory.name, interactions, items, "temporal")


def _read_atomic(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """A RecBole atomic file with the ``:type`` suffixes taken off the header."""
    frame, lines = read_delimited(path, sep="\t", dtype="str", quote=False)
    return frame.rename(columns=lambda column: str(column).split(":")[0]), lines


def _movielens_items(path: Path) -> pd.DataFrame:
    frame, lines = _read_atomic(path)
    if "item_id" not in frame.columns:
        raise DataError(f"{path}: no item_id column")
    where = _Where(str(path), lines, "line")
    genres = frame["class"] if "class" in frame.columns else pd.Series(pd.NA, index=frame.index)
    return pd.DataFrame(
        {
            "item_id": _int64_column(frame["item_id"], where),
            "topic": genres.str.split().str[0].astype("str"),
            "title": frame.get("movie_title", pd.Series(pd.NA, index=frame.index)).astype("str"),
        }
    )


def load_sequences(path: str | Path, name: str) -> Dataset:
    """A sequence file (``user item item ...`` per line) as dataset ``name``.

    ``path`` is the file, or a directory holding exactly one ``*.txt``.
    Protocol ``leave_last_one_out``.
    """
    file = _sequence_file(Path(path))
    users, items, lines = _parse_sequences(file)
    sizes = np.array([len(row) for row in items], dtype=np.int64)
    flat = np.concatenate(items) if items else np.zeros(0, np.int64)
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(np.array(users, np.int64), sizes),
            "item_id": flat,
            "timestamp": _positions(sizes).astype(np.float64),
        }
    )
    where = _Where(str(file), np.repeat(np.array(lines, np.int64), sizes), "line")
    attributes = file.with_name(f"{file.stem}_item2attributes.json")
    items_frame = _attribute_items(attributes) if attributes.exists() else None
    return Dataset(name, _validate(frame, where), items_frame, "leave_last_one_out")


def _sequence_file(path: Path) -> Path:
    if path.is_dir():
        texts = sorted(path.glob("*.txt"))
        if len(texts) != 1:
            raise DataError(f"{path}: expected one *.txt sequence file, found {len(texts)}")
        return texts[0]
    if not path.exists():
        raise DataError(f"{path}: no such file")
    return path


def _parse_sequences(file: Path) -> tuple[list[int], list[np.ndarray], list[int]]:
    """Users, their item arrays and their line numbers; blank lines are skipped."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot be read: {exc}") from exc
    users: list[int] = []
    items: list[np.ndarray] = []
    lines: list[int] = []
    first_line: dict[int, int] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        ids = _int_tokens(tokens, file, line_no)
        user = int(ids[0])
        if user in first_line:
            raise DataError(
                f"{file}: line {line_no}: user {user} already has a sequence "
                f"on line {first_line[user]}"
            )
        first_line[user] = line_no
        users.append(user)
        items.append(ids[1:])
        lines.append(line_no)
    return users, items, lines


def _int_tokens(tokens: list[str], file: Path, line_no: int) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        for token in tokens:
            try:
                np.int64(int(token))
            except (ValueError, OverflowError):
                raise DataError(f"{file}: line {line_no}: {token!r} is not an integer id") from None
        raise  # pragma: no cover - numpy rejected what int() accepts


def _positions(sizes: np.ndarray) -> np.ndarray:
    """0, 1, …, size-1 for each size, concatenated."""
    starts = np.cumsum(sizes) - sizes
    return np.arange(int(sizes.sum())) - np.repeat(starts, sizes)


def _attribute_items(path: Path) -> pd.DataFrame:
    """``item_id``, ``topic`` (the first attribute id, as text) and ``attributes``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        pairs = [(int(item), [int(a) for a in attrs]) for item, attrs in raw.items()]
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not an item → attribute-id list JSON object: {exc}") from exc
    pairs.sort()
    return pd.DataFrame(
        {
            "item_id": np.array([item for item, _ in pairs], dtype=np.int64),
            "topic": pd.Series([str(a[0]) if a else None for _, a in pairs], dtype="str"),
            "attributes": [tuple(a) for _, a in pairs],
        }
    )


_DATASETS: dict[str, Callable[[Path], Dataset]] = {
    "ml-100k": lambda root: load_movielens(root / "ml-100k"),
    "beauty": lambda root: load_sequences(root / "amazon-beauty" / "Beauty.txt", "beauty"),
    "lastfm": lambda root: load_sequences(root / "lastfm" / "LastFM.txt", "lastfm"),
}
#: Names :func:`load_dataset` knows.
DATASET_NAMES: tuple[str, ...] = tuple(_DATASETS)


def load_dataset(name: str, datasets_dir: str | Path) -> Dataset:
    """A benchmark dataset by name from ``datasets_dir`` (e.g. ``../shared/datasets``).

    >>> load_dataset("netflix", ".")
    Traceback (most recent call last):
    ...
    trustfeed.data._schema.DataError: unknown dataset 'netflix'; valid: ml-100k, beauty, lastfm
    """
    try:
        loader = _DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(DATASET_NAMES)}") from None
    root = Path(datasets_dir)
    if not root.is_dir():
        raise DataError(f"{root}: datasets directory not found")
    return loader(root)

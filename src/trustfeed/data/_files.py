"""Loading a user's own interaction log from CSV or Parquet.

The file holds one interaction per row in the schema of
:mod:`trustfeed.data._schema`: required ``user_id``, ``item_id`` (integers)
and ``timestamp`` (seconds since the Unix epoch, or an ISO-8601 time; naive
times are UTC); optional ``event`` (one of :data:`~trustfeed.data.EVENTS`,
empty = ``view``), ``watch_ms``, ``duration_ms`` (non-negative numbers) and
``value``; any other column is kept as it is. A CSV example::

    user_id,item_id,timestamp,event,watch_ms
    1,501,2024-05-01T12:00:00Z,view,8200
    1,502,1714565100,like,
    2,501,1714565200.5,skip,400

Which reader is used follows the suffix: ``.csv`` (also ``.csv.gz``),
``.tsv`` (tab separated) or ``.parquet``/``.pq``. An error names the file and,
for CSV, the line in the file (the header is line 1); for Parquet, the 1-based
row. Blank CSV lines are skipped. A quoted field that spans lines makes the
reported line numbers of later rows too small.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from trustfeed.data._schema import DataError
from trustfeed.data._validate import _validate, _Where

#: Columns read as text so that ids and times are converted exactly, by us.
_TEXT_COLUMNS = {"user_id": "str", "item_id": "str", "timestamp": "str", "event": "str"}


def load_interactions(path: str | Path) -> pd.DataFrame:
    """Read and validate an interaction log (see the module docstring for the format).

    Nothing is returned unless the whole file is valid.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        frame = _read_parquet(path)
        return _validate(frame, _Where(str(path), np.arange(1, len(frame) + 1), "row"))
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        frame, lines = read_delimited(path, sep="\t" if ".tsv" in name else ",")
        return _validate(frame, _Where(str(path), lines, "line"))
    raise DataError(f"{path}: unknown format; expected .csv, .csv.gz, .tsv or .parquet")


def read_delimited(
    path: Path, sep: str, dtype: Mapping[str, str] | str | None = None, quote: bool = True
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a delimited text file; also return each row's line number (header = 1).

    Blank lines are dropped from the frame but still counted, so the numbers
    stay those of the file. ``quote=False`` reads quote characters as text
    (RecBole's atomic files).
    """
    quoting: Literal[0, 3] = 0 if quote else 3  # csv.QUOTE_MINIMAL / csv.QUOTE_NONE
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype=_TEXT_COLUMNS if dtype is None else dtype,
            skip_blank_lines=False,
            quoting=quoting,
        )
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty (a header line is needed)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as delimited text: {exc}") from exc
    lines = np.arange(2, len(frame) + 2)
    blank = frame.isna().all(axis=1).to_numpy(bool)
    if blank.any():
        frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    return frame, lines


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: cannot be read as Parquet: {exc}") from exc

"""Checking and normalising a frame against the interaction schema.

Every loader ends here, so a frame that leaves this module has the dtypes of
:mod:`trustfeed.data._schema` and nothing downstream re-checks them. The first
problem found stops the load; the message names the source and the line (for
files) or the 1-based row (for frames), so a user can open the file there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trustfeed.data._schema import EVENTS, REQUIRED_COLUMNS, DataError

_INT64_MAX_DIGITS = "9223372036854775807"
_INT64_MIN_DIGITS = "9223372036854775808"  # magnitude of the most negative int64
_TWO_63 = 2.0**63
_NON_NEGATIVE = ("watch_ms", "duration_ms")


@dataclass(frozen=True)
class _Where:
    """Turns a row position into the place a user would look: ``file: line 7``."""

    source: str
    lines: np.ndarray  # the line (or row) number of each row, by position
    unit: str = "row"

    def fail(self, bad: np.ndarray, column: pd.Series, problem: str) -> None:
        """Raise for the first ``True`` in ``bad``, quoting that row's value."""
        positions = np.flatnonzero(bad)
        if len(positions) == 0:
            return
        first = int(positions[0])
        more = f" ({len(positions)} rows in all)" if len(positions) > 1 else ""
        raise DataError(
            f"{self.source}: {self.unit} {int(self.lines[first])}: "
            f"{column.name}{_show(column.iloc[first])} {problem}{more}"
        )


def _show(value: object) -> str:
    """The offending value as it would be typed, or nothing for a missing one."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    return f" {value!r}"


def validate_interactions(df: pd.DataFrame, source: str = "<frame>") -> pd.DataFrame:
    """Return a new frame in the interaction schema, or raise :class:`DataError`.

    Ids become int64, ``timestamp`` float64 seconds since the epoch (numbers
    are taken as seconds; ISO-8601 strings are converted, naive ones read as
    UTC), optional columns get their schema dtype (an empty ``event`` means
    ``view``) and extra columns are kept as they are. The result has a fresh
    ``RangeIndex``; ``df`` is never modified. Errors name ``source`` and the
    1-based row.

    >>> frame = pd.DataFrame({"user_id": ["7"], "item_id": [3.0],
    ...                       "timestamp": ["1970-01-01T00:01:00Z"]})
    >>> validate_interactions(frame).dtypes.astype(str).tolist()
    ['int64', 'int64', 'float64']
    >>> validate_interactions(frame.assign(event="clap"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trustfeed.data._schema.DataError: <frame>: row 1: event 'clap' is not one of ...
    """
    return _validate(df, _Where(source, np.arange(1, len(df) + 1)))


def _validate(df: pd.DataFrame, where: _Where) -> pd.DataFrame:
    if not df.columns.is_unique:
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise DataError(f"{where.source}: duplicate columns {dup}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{where.source}: missing required column(s) {missing}; "
            f"expected {list(REQUIRED_COLUMNS)}, found {[str(c) for c in df.columns]}"
        )
    converted = {
        name: convert(df[name].reset_index(drop=True), where)
        for name, convert in _CONVERTERS.items()
        if name in df.columns
    }
    out = df.reset_index(drop=True)  # a new frame; the caller's ``df`` is untouched
    return out.assign(**converted)


def _text(values: pd.Series) -> pd.Series:
    return values.astype("str").str.strip()


def _int64_column(values: pd.Series, where: _Where) -> np.ndarray:
    """Exact conversion to int64: no silent rounding, no wrap-around."""
    where.fail(values.isna().to_numpy(), values, "is missing")
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        where.fail(np.ones(len(values), bool), values, "is a boolean, not an id")
    if pd.api.types.is_integer_dtype(dtype):
        if pd.api.types.is_unsigned_integer_dtype(dtype):
            big = values.to_numpy(np.uint64) > np.uint64(2**63 - 1)
            where.fail(big, values, "is outside the int64 range")
        return values.to_numpy(np.int64)
    if pd.api.types.is_float_dtype(dtype):
        return _int64_from_float(values.to_numpy(np.float64), values, where)
    text = _text(values)
    digits = text.str.fullmatch(r"[+-]?\d+").to_numpy(bool)
    magnitude = text.str.lstrip("+-").str.lstrip("0")
    negative = text.str.startswith("-").to_numpy(bool)
    limit = np.where(negative, _INT64_MIN_DIGITS, _INT64_MAX_DIGITS)
    length = magnitude.str.len().to_numpy()
    too_big = digits & (
        (length > 19) | ((length == 19) & (magnitude.to_numpy(object) > limit.astype(object)))
    )
    where.fail(too_big, values, "is outside the int64 range")
    out = np.zeros(len(values), np.int64)
    if digits.any():
        out[digits] = text[digits].astype("int64").to_numpy()
    if not digits.all():
        numbers = pd.to_numeric(text[~digits], errors="coerce").to_numpy(np.float64)
        rest = np.full(len(values), np.nan)
        rest[~digits] = numbers
        where.fail(~digits & np.isnan(rest), values, "is not a number")
        out[~digits] = _int64_from_float(rest, values, where)[~digits]
    return out


def _int64_from_float(numbers: np.ndarray, values: pd.Series, where: _Where) -> np.ndarray:
    finite = np.isfinite(numbers)
    whole = np.zeros(len(numbers), bool)
    whole[finite] = numbers[finite] == np.floor(numbers[finite])
    where.fail(~np.isnan(numbers) & ~whole, values, "is not an integer")
    where.fail(
        whole & ((numbers >= _TWO_63) | (numbers < -_TWO_63)), values, "is outside the int64 range"
    )
    return np.where(whole, numbers, 0).astype(np.int64)


def _timestamp_column(values: pd.Series, where: _Where) -> np.ndarray:
    """Seconds since the epoch, from numbers (taken as seconds) or ISO-8601 strings."""
    where.fail(values.isna().to_numpy(), values, "is missing")
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        seconds = _epoch_seconds(pd.Series(values))
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        seconds = values.to_numpy(np.float64)
    else:
        text = _text(values)
        seconds = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, copy=True)
        words = np.isnan(seconds)
        if words.any():
            parsed = pd.to_datetime(text[words], format="ISO8601", utc=True, errors="coerce")
            seconds[words] = _epoch_seconds(parsed)
        where.fail(np.isnan(seconds), values, "is neither seconds nor an ISO-8601 time")
    where.fail(~np.isfinite(seconds), values, "is not a finite time")
    where.fail(seconds < 0, values, "is before the Unix epoch")
    return seconds


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    if times.dt.tz is None:
        times = times.dt.tz_localize("UTC")
    delta = (times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return delta.to_numpy(np.float64)


def _float_column(values: pd.Series, where: _Where) -> np.ndarray:
    """Float64 with NaN for a missing value; text that is not a number is an error."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = values.to_numpy(np.float64, na_value=np.nan)
    else:
        given = values.notna() & (_text(values) != "")
        numbers = pd.to_numeric(_text(values).where(given), errors="coerce").to_numpy(np.float64)
        where.fail(given.to_numpy(bool) & np.isnan(numbers), values, "is not a number")
    if values.name in _NON_NEGATIVE:
        where.fail(np.isinf(numbers), values, "is not finite")
        where.fail(numbers < 0, values, "is negative")
    return numbers


def _event_column(values: pd.Series, where: _Where) -> pd.Categorical:
    """Fixed categories (:data:`EVENTS`) so frames from different files concatenate."""
    text = _text(values).where(values.notna() & (_text(values) != ""), "view")
    unknown = ~text.isin(EVENTS).to_numpy(bool)
    where.fail(unknown, values, f"is not one of {list(EVENTS)}")
    return pd.Categorical(text.to_numpy(object), categories=list(EVENTS))


#: How each schema column is checked and converted (a test keeps it in step with the schema).
_CONVERTERS: dict[str, Callable[[pd.Series, _Where], np.ndarray | pd.Categorical]] = {
    "user_id": _int64_column,
    "item_id": _int64_column,
    "timestamp": _timestamp_column,
    "event": _event_column,
    "watch_ms": _float_column,
    "duration_ms": _float_column,
    "value": _float_column,
}

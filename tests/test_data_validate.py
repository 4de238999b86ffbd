"""validate_interactions and load_interactions: normalisation, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trustfeed.data import (
    EVENTS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    DataError,
    load_interactions,
    validate_interactions,
)
from trustfeed.data._validate import _CONVERTERS


def _frame(**overrides: object) -> pd.DataFrame:
    columns: dict[str, object] = {
        "user_id": [1, 2, 3],
        "item_id": [10, 20, 30],
        "timestamp": [0.0, 1.5, 2.0],
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_converters_cover_the_schema() -> None:
    assert set(_CONVERTERS) == {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS}


def test_normalises_dtypes_and_keeps_extra_columns() -> None:
    raw = pd.DataFrame(
        {
            "user_id": ["7", " 8 ", "9"],
            "item_id": [1.0, 2.0, 3.0],
            "timestamp": ["1970-01-01T00:01:00Z", "60.5", "1970-01-01T02:00:00+01:00"],
            "event": ["like", None, "skip"],
            "watch_ms": ["100", "", None],
            "duration_ms": [1, 2, 3],
            "value": [0.5, np.nan, -1.0],
            "country": ["nl", "de", "fr"],
        },
        index=[5, 6, 7],
    )
    out = validate_interactions(raw)
    assert out["user_id"].dtype == np.int64 and out["user_id"].tolist() == [7, 8, 9]
    assert out["item_id"].dtype == np.int64
    # 00:01:00Z = 60 s; 02:00+01:00 = 01:00Z = 3600 s.
    assert out["timestamp"].tolist() == [60.0, 60.5, 3600.0]
    assert list(out["event"].cat.categories) == list(EVENTS)
    assert out["event"].tolist() == ["like", "view", "skip"]  # empty event = view
    for column in ("watch_ms", "duration_ms", "value"):
        assert out[column].dtype == np.float64
    assert np.isnan(out["watch_ms"].iloc[1]) and np.isnan(out["watch_ms"].iloc[2])
    assert out["country"].tolist() == ["nl", "de", "fr"]
    assert list(out.index) == [0, 1, 2]


def test_input_is_not_mutated() -> None:
    raw = _frame(user_id=["1", "2", "3"], event=["like", None, "view"])
    before = raw.copy(deep=True)
    out = validate_interactions(raw)
    pd.testing.assert_frame_equal(raw, before)
    assert out is not raw


def test_int64_extremes_are_exact() -> None:
    ids = ["9223372036854775807", "-9223372036854775808", "+0012"]
    out = validate_interactions(_frame(item_id=ids))
    assert out["item_id"].tolist() == [2**63 - 1, -(2**63), 12]


def test_empty_frame_is_typed() -> None:
    out = validate_interactions(pd.DataFrame({c: [] for c in REQUIRED_COLUMNS}))
    assert len(out) == 0
    assert out.dtypes.astype(str).tolist() == ["int64", "int64", "float64"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"user_id": [1, "abc", 3]}, "row 2: user_id 'abc' is not a number"),
        ({"item_id": [1, 2, 2.5]}, "row 3: item_id 2.5 is not an integer"),
        ({"item_id": ["1", "2.5", "x"]}, "row 3: item_id 'x' is not a number"),
        ({"item_id": [1, None, 3]}, "row 2: item_id is missing"),
        ({"user_id": ["9223372036854775808", "1", "2"]}, "row 1: user_id '9223372036854775808'"),
        ({"user_id": [1e19, 1, 2]}, "is outside the int64 range"),
        (
            {"user_id": np.array([2**64 - 1, 1, 2], dtype=np.uint64)},
            "is outside the int64 range",
        ),
        ({"user_id": [True, False, True]}, "is a boolean"),
        ({"timestamp": [0.0, np.nan, 1.0]}, "row 2: timestamp is missing"),
        ({"timestamp": [0.0, 1.0, -5.0]}, "row 3: timestamp -5.0 is before the Unix epoch"),
        ({"timestamp": ["0", "yesterday", "1"]}, "'yesterday' is neither seconds nor an ISO"),
        ({"timestamp": ["0", "1", "1969-12-31T23:59:59Z"]}, "before the Unix epoch"),
        ({"timestamp": [0.0, np.inf, 1.0]}, "is not a finite time"),
        ({"watch_ms": [1.0, -1.0, 2.0]}, "row 2: watch_ms -1.0 is negative"),
        ({"duration_ms": ["1", "long", "2"]}, "row 2: duration_ms 'long' is not a number"),
        ({"event": ["view", "like", "clap"]}, "row 3: event 'clap' is not one of"),
    ],
)
def test_bad_values_name_the_row(overrides: dict[str, object], expected: str) -> None:
    with pytest.raises(DataError, match=r"^<frame>: ") as error:
        validate_interactions(_frame(**overrides))
    assert expected in str(error.value)


def test_error_counts_further_bad_rows() -> None:
    with pytest.raises(DataError, match=r"row 1: .* \(3 rows in all\)"):
        validate_interactions(_frame(event=["a", "b", "c"]))


def test_missing_and_duplicate_columns() -> None:
    with pytest.raises(DataError, match=r"mine: missing required column\(s\) \['timestamp'\]"):
        validate_interactions(_frame().drop(columns="timestamp"), source="mine")
    doubled = pd.concat([_frame(), _frame()[["item_id"]]], axis=1)
    with pytest.raises(DataError, match="duplicate columns"):
        validate_interactions(doubled)


# --- files -----------------------------------------------------------------------------------

GOOD_CSV = """user_id,item_id,timestamp,event,watch_ms
1,501,2024-05-01T12:00:00Z,view,8200
1,502,1714565100,like,
2,501,1714565200.5,skip,400
"""


def test_load_csv(tmp_path: Path) -> None:
    out = load_interactions(_write(tmp_path / "log.csv", GOOD_CSV))
    assert out["user_id"].tolist() == [1, 1, 2]
    assert out["timestamp"].tolist() == [1714564800.0, 1714565100.0, 1714565200.5]
    assert out["event"].tolist() == ["view", "like", "skip"]
    assert out["watch_ms"].iloc[0] == 8200.0 and np.isnan(out["watch_ms"].iloc[1])


def test_load_parquet_and_tsv_agree_with_csv(tmp_path: Path) -> None:
    expected = load_interactions(_write(tmp_path / "log.csv", GOOD_CSV))
    expected.to_parquet(tmp_path / "log.parquet")
    pd.testing.assert_frame_equal(load_interactions(tmp_path / "log.parquet"), expected)
    tsv = _write(tmp_path / "log.tsv", GOOD_CSV.replace(",", "\t"))
    pd.testing.assert_frame_equal(load_interactions(tsv), expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Header = line 1, so the third data row is line 4.
        ("user_id,item_id,timestamp\n1,2,3\n4,5,6\nabc,8,9\n", "line 4: user_id 'abc' is not a"),
        # A blank line still counts: the bad row is on line 5 of the file.
        ("user_id,item_id,timestamp\n1,2,3\n\n4,5,6\n7,x,9\n", "line 5: item_id 'x' is not a"),
        ("user_id,item_id,timestamp\n1,2,3\n1,2,soon\n", "line 3: timestamp 'soon' is neither"),
        ("user_id,item_id,timestamp,event\n1,2,3,view\n1,2,3,love\n", "line 3: event 'love'"),
        ("user_id,item_id\n1,2\n", "missing required column(s) ['timestamp']"),
        ("user_id,item_id,timestamp\n1,2,3\n1,2,3,4,5\n", "cannot be read as delimited text"),
        ("", "the file is empty"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as error:
        load_interactions(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_bad_parquet_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    _frame(watch_ms=[1.0, 2.0, -3.0]).to_parquet(path)
    with pytest.raises(DataError, match=r"bad\.parquet: row 3: watch_ms -3\.0 is negative"):
        load_interactions(path)


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_interactions(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="unknown format"):
        load_interactions(_write(tmp_path / "log.json", "{}"))
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        load_interactions(_write(tmp_path / "log.parquet", "not parquet"))

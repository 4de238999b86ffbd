"""Benchmark and KuaiRand loaders: the real files (row counts) and small hand-made ones."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trustfeed.data import (
    DATASET_NAMES,
    KUAIRAND_SHA256,
    DataError,
    Dataset,
    kuairand_path,
    load_dataset,
    load_kuairand,
    load_movielens,
    load_sequences,
    validate_interactions,
)

# --- real datasets (../shared) ---------------------------------------------------------------


def _counts(frame: pd.DataFrame) -> tuple[int, int, int]:
    return len(frame), frame["user_id"].nunique(), frame["item_id"].nunique()


@pytest.mark.shared
def test_ml_100k(shared_datasets: Path) -> None:
    dataset = load_dataset("ml-100k", shared_datasets)
    assert dataset.name == "ml-100k" and dataset.protocol == "temporal"
    inter = dataset.interactions
    assert _counts(inter) == (100_000, 943, 1_682)
    assert inter["value"].between(1, 5).all()
    assert dataset.items is not None and len(dataset.items) == 1_682
    first = dataset.items.iloc[0]
    assert (first["item_id"], first["title"], first["topic"]) == (1, "Toy Story", "Animation")


@pytest.mark.shared
def test_beauty(shared_datasets: Path) -> None:
    dataset = load_dataset("beauty", shared_datasets)
    assert dataset.protocol == "leave_last_one_out"
    assert _counts(dataset.interactions) == (198_502, 22_363, 12_101)
    # The file's first line is "1 1 2 3 4 5": positions 0..4 are the timestamps.
    user_1 = dataset.interactions[dataset.interactions["user_id"] == 1]
    assert user_1["item_id"].tolist() == [1, 2, 3, 4, 5]
    assert user_1["timestamp"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert dataset.items is not None and len(dataset.items) == 12_101


@pytest.mark.shared
def test_lastfm(shared_datasets: Path) -> None:
    dataset = load_dataset("lastfm", shared_datasets)
    assert _counts(dataset.interactions) == (52_551, 1_090, 3_646)
    assert dataset.items is not None


@pytest.mark.shared
def test_dataset_split_follows_protocol(shared_datasets: Path) -> None:
    train, test = load_dataset("beauty", shared_datasets).split()
    # Leave-last-one-out: one test item per user (every Beauty user has ≥ 5).
    assert len(test) == 22_363 and len(train) == 198_502 - 22_363


@pytest.mark.shared
def test_shipped_kuairand_equals_shared_copy(shared_datasets: Path) -> None:
    shared = load_kuairand(shared_datasets / "kuairand-1k" / "log_random_4_22_to_5_08_1k.csv")
    pd.testing.assert_frame_equal(load_kuairand(), shared)


# --- KuaiRand (shipped in the package, no ../shared needed) ----------------------------------


def test_shipped_kuairand_is_the_release() -> None:
    content = gzip.decompress(kuairand_path().read_bytes())
    assert hashlib.sha256(content).hexdigest() == KUAIRAND_SHA256
    assert KUAIRAND_SHA256 == "e98841eabb3b078c812c4646bf0c5e3f0c947a4183dd950cb091e32377b9a849"
    attribution = (kuairand_path().parent / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in attribution and "kuairand.com" in attribution


def test_kuairand_typed_and_in_schema() -> None:
    log = load_kuairand()
    assert _counts(log) == (43_028, 1_000, 7_388)
    assert (log["item_id"] == log["video_id"]).all()
    assert (log["timestamp"] == log["time_ms"] / 1000).all()
    assert log["is_click"].dtype == np.int64 and log["duration_ms"].dtype == np.float64
    assert log["is_click"].isin([0, 1]).all()
    validated = validate_interactions(log, source="kuairand")
    pd.testing.assert_frame_equal(validated, log)  # already normalised: nothing changes


def test_kuairand_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("user_id,item_id,timestamp\n1,2,3\n", encoding="utf-8")
    with pytest.raises(DataError, match="not KuaiRand's"):
        load_kuairand(path)
    with pytest.raises(DataError, match="no such file"):
        load_kuairand(tmp_path / "absent.csv")


# --- formats on small hand-made files --------------------------------------------------------


def _movielens_dir(root: Path, inter_rows: str) -> Path:
    directory = root / "ml-tiny"
    directory.mkdir()
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    (directory / "ml-tiny.inter").write_text(header + inter_rows, encoding="utf-8")
    (directory / "ml-tiny.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        '1\tThe "Quoted" Film\t1995\tComedy Drama\n2\tOther\t1996\tHorror\n',
        encoding="utf-8",
    )
    return directory


def test_movielens_atomic_files(tmp_path: Path) -> None:
    dataset = load_movielens(_movielens_dir(tmp_path, "1\t1\t4\t100\n2\t2\t3.5\t90\n"))
    assert isinstance(dataset, Dataset) and dataset.name == "ml-tiny"
    inter = dataset.interactions
    assert inter.columns.tolist() == ["user_id", "item_id", "value", "timestamp"]
    assert inter["value"].tolist() == [4.0, 3.5]
    assert dataset.items is not None
    assert dataset.items["title"].tolist() == ['The "Quoted" Film', "Other"]
    assert dataset.items["topic"].tolist() == ["Comedy", "Horror"]


def test_movielens_error_names_line(tmp_path: Path) -> None:
    directory = _movielens_dir(tmp_path, "1\t1\t4\t100\n1\tx\t4\t100\n")
    with pytest.raises(DataError, match=r"ml-tiny\.inter: line 3: item_id 'x' is not a number"):
        load_movielens(directory)
    with pytest.raises(DataError, match=r"expected one \*\.inter file, found 0"):
        load_movielens(tmp_path)


def test_sequences_with_and_without_attributes(tmp_path: Path) -> None:
    path = tmp_path / "Tiny.txt"
    path.write_text("1 10 11 10\n\n2 12\n", encoding="utf-8")
    dataset = load_sequences(path, "tiny")
    assert dataset.items is None and dataset.protocol == "leave_last_one_out"
    inter = dataset.interactions
    assert inter["user_id"].tolist() == [1, 1, 1, 2]
    assert inter["item_id"].tolist() == [10, 11, 10, 12]
    assert inter["timestamp"].tolist() == [0.0, 1.0, 2.0, 0.0]

    (tmp_path / "Tiny_item2attributes.json").write_text(
        json.dumps({"11": [5, 6], "10": [7], "12": []}), encoding="utf-8"
    )
    items = load_sequences(tmp_path, "tiny").items  # a directory with one *.txt works too
    assert items is not None
    assert items["item_id"].tolist() == [10, 11, 12]
    assert items["topic"].tolist()[:2] == ["7", "5"] and pd.isna(items["topic"].iloc[2])
    assert items["attributes"].tolist() == [(7,), (5, 6), ()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 10 11\n2 12 x3\n", "line 2: 'x3' is not an integer id"),
        ("1 10\n\n1 11\n", "line 3: user 1 already has a sequence on line 1"),
        ("1 99999999999999999999\n", "line 1: '99999999999999999999' is not an integer id"),
    ],
)
def test_sequence_errors_name_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "Bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_sequences(path, "bad")
    assert str(error.value) == f"{path}: {expected}"


def test_load_dataset_unknown_name_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'ml-1m'; valid: ml-100k, beauty, lastfm"):
        load_dataset("ml-1m", tmp_path)
    assert DATASET_NAMES == ("ml-100k", "beauty", "lastfm")
    with pytest.raises(DataError, match="datasets directory not found"):
        load_dataset("beauty", tmp_path / "nowhere")
    with pytest.raises(DataError, match="no such file"):
        load_dataset("beauty", tmp_path)

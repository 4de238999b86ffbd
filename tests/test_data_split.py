"""temporal_split / leave_last_out: hand-checked cases and Hypothesis properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustfeed.data import (
    DataError,
    leave_last_out,
    load_dataset,
    split_for,
    temporal_split,
)


def _log(users: list[int], times: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": users, "item_id": np.arange(len(users)) + 100, "timestamp": times},
        index=np.arange(len(users)) * 10,  # a non-default index must survive
    )


def _check_split(df: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Disjoint, complete, original order, and each user's test at/after their train."""
    assert not set(train.index) & set(test.index)
    assert sorted([*train.index, *test.index]) == sorted(df.index)
    assert train.index.is_monotonic_increasing and test.index.is_monotonic_increasing
    last_train = train.groupby("user_id")["timestamp"].max()
    first_test = test.groupby("user_id")["timestamp"].min()
    both = first_test.index.intersection(last_train.index)
    assert (first_test[both] >= last_train[both]).all()


def test_temporal_split_by_hand() -> None:
    # User 1 has 10 interactions → round(0.2 · 10) = 2 latest (times 9 and 10) go to test.
    # User 2 has 5 → round(0.2 · 5) = 1 (time 5). User 3 has 4 < 5 → all in train.
    df = _log([1] * 10 + [2] * 5 + [3] * 4, [*range(10, 0, -1), 1, 2, 3, 4, 5, 1, 2, 3, 4])
    train, test = temporal_split(df)
    assert test["timestamp"].tolist() == [10, 9, 5]
    assert test["user_id"].tolist() == [1, 1, 2]
    assert len(train) == 16
    _check_split(df, train, test)
    # test_fraction 0.25 of 10 = 2.5 → rounds half up to 3; of 5 = 1.25 → 1.
    _, test = temporal_split(df, test_fraction=0.25)
    assert test.groupby("user_id").size().to_dict() == {1: 3, 2: 1}
    # A user always keeps one training interaction, even at fraction 0.99.
    train, test = temporal_split(df, test_fraction=0.99)
    assert train.groupby("user_id").size().to_dict() == {1: 1, 2: 1, 3: 4}


def test_ties_keep_frame_order() -> None:
    df = _log([7, 7, 7], [1.0, 1.0, 1.0])
    train, test = leave_last_out(df)
    assert test["item_id"].tolist() == [102] and train["item_id"].tolist() == [100, 101]


def test_leave_last_out_by_hand() -> None:
    df = _log([1, 1, 1, 2, 2, 3], [3.0, 1.0, 2.0, 5.0, 4.0, 0.0])
    train, test = leave_last_out(df)
    assert test["timestamp"].tolist() == [3.0, 5.0]  # user 3 has one interaction: train only
    train, test = leave_last_out(df, n=2)  # user 1 only: 3 ≥ n + 1
    assert test["timestamp"].tolist() == [3.0, 2.0]
    assert train["user_id"].tolist() == [1, 2, 2, 3]


def test_inputs_not_mutated_and_deterministic() -> None:
    df = _log([2, 1, 2, 1, 2, 2, 2], [5.0, 1.0, 4.0, 0.0, 3.0, 2.0, 1.0])
    before = df.copy(deep=True)
    for split in (temporal_split, leave_last_out):
        first = split(df)
        second = split(df)
        pd.testing.assert_frame_equal(df, before)
        for a, b in zip(first, second, strict=True):
            pd.testing.assert_frame_equal(a, b)


def test_validation_is_carved_from_train() -> None:
    df = _log([1] * 20, [float(t) for t in range(20)])
    train, test = temporal_split(df)
    fit, validation = temporal_split(train)
    # 20 → 16 train / 4 test; 16 → round(3.2) = 3 validation, all before any test item.
    assert (len(fit), len(validation), len(test)) == (13, 3, 4)
    assert validation["timestamp"].max() < test["timestamp"].min()


def test_split_for_and_bad_arguments() -> None:
    assert split_for("temporal") is temporal_split
    assert split_for("leave_last_one_out") is leave_last_out
    with pytest.raises(ValueError, match="unknown protocol 'random'"):
        split_for("random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="test_fraction"):
        temporal_split(_log([1], [0.0]), test_fraction=1.0)
    with pytest.raises(ValueError, match="n must be at least 1"):
        leave_last_out(_log([1], [0.0]), n=0)
    with pytest.raises(DataError, match=r"missing column\(s\) \['timestamp'\]"):
        leave_last_out(pd.DataFrame({"user_id": [1]}))


def test_empty_frame() -> None:
    train, test = temporal_split(_log([], []))
    assert len(train) == len(test) == 0


@pytest.mark.shared
def test_ml_100k_fractions(shared_datasets: Path) -> None:
    train, test = temporal_split(load_dataset("ml-100k", shared_datasets).interactions)
    # Every ml-100k user has ≥ 20 ratings, so each gives round(0.2 · n) to test.
    assert len(test) == 20_000 and len(train) == 80_000
    assert set(test["user_id"]) == set(train["user_id"])


frames = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 5)),  # (user, time): small ranges make ties
    max_size=60,
).map(lambda rows: _log([u for u, _ in rows], [float(t) for _, t in rows]))


@settings(max_examples=60, deadline=None)
@given(df=frames, fraction=st.floats(0.05, 0.95), min_interactions=st.integers(1, 6))
def test_temporal_split_properties(
    df: pd.DataFrame, fraction: float, min_interactions: int
) -> None:
    train, test = temporal_split(df, test_fraction=fraction, min_interactions=min_interactions)
    _check_split(df, train, test)
    sizes = df.groupby("user_id").size()
    got = test.groupby("user_id").size().reindex(sizes.index, fill_value=0)
    n = sizes.to_numpy()
    rounded = np.floor(fraction * n + 0.5)  # round half up
    expected = np.where(n >= min_interactions, np.minimum(rounded, n - 1), 0)
    assert (got.to_numpy() == expected).all()


@settings(max_examples=60, deadline=None)
@given(df=frames, n=st.integers(1, 3))
def test_leave_last_out_properties(df: pd.DataFrame, n: int) -> None:
    train, test = leave_last_out(df, n=n)
    _check_split(df, train, test)
    sizes = df.groupby("user_id").size()
    got = test.groupby("user_id").size().reindex(sizes.index, fill_value=0)
    assert (got == np.where(sizes > n, n, 0)).all()

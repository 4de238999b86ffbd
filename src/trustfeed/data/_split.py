"""Train/test splits that respect time, per user.

Both splits hold out each user's *latest* interactions (ordered by
``timestamp``; equal timestamps keep the frame's order), so every test
interaction of a user is at or after all of that user's training
interactions. They are deterministic, never modify their input, and return
row subsets of it with the original index and row order, so the two index
sets partition the input's.

Validation is carved from the training part by calling the same split again
on it; model selection then never sees the test set::

    split = split_for(dataset.protocol)
    train, test = split(dataset.interactions)
    fit_part, validation = split(train)  # tune on these, report on test

``temporal_split`` suits logs with real time (MovieLens, KuaiRand);
``leave_last_out`` is the standard protocol of the sequence benchmarks
(Amazon Beauty, LastFM: the last item of each user is the test item).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from trustfeed.data._schema import DataError

SplitProtocol = Literal["temporal", "leave_last_one_out"]
Split = Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]

#: Users with fewer interactions than this stay wholly in train in ``temporal_split``.
MIN_INTERACTIONS_TO_SPLIT = 5


def temporal_split(
    df: pd.DataFrame,
    test_fraction: float = 0.2,
    min_interactions: int = MIN_INTERACTIONS_TO_SPLIT,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the latest ``test_fraction`` of interactions go to test.

    A user with ``n`` interactions gives ``round(test_fraction * n)`` (halves
    round up) of them to test, but always keeps at least one in train; users
    with fewer than ``min_interactions`` (default 5) stay wholly in train,
    since a one-item history says little about a model.

    >>> df = pd.DataFrame({"user_id": [1] * 5 + [2] * 2, "item_id": range(7),
    ...                    "timestamp": [5.0, 1, 2, 3, 4, 1, 2]})
    >>> train, test = temporal_split(df)
    >>> test["item_id"].tolist(), len(train)
    ([0], 6)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    counts = _user_counts(df)
    n_test = np.floor(test_fraction * counts + 0.5).astype(np.int64)
    n_test = np.where(counts >= min_interactions, np.minimum(n_test, counts - 1), 0)
    return _hold_out_last(df, n_test)


def leave_last_out(df: pd.DataFrame, n: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the last ``n`` interactions go to test.

    Users with ``n`` or fewer interactions stay wholly in train (they would
    otherwise have nothing to learn from).

    >>> df = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [10, 11, 12, 13],
    ...                    "timestamp": [0.0, 2, 1, 0]})
    >>> train, test = leave_last_out(df)
    >>> test["item_id"].tolist(), train["item_id"].tolist()
    ([11], [10, 12, 13])
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    counts = _user_counts(df)
    return _hold_out_last(df, np.where(counts >= n + 1, n, 0))


def split_for(protocol: SplitProtocol) -> Split:
    """The split a :class:`~trustfeed.data.Dataset`'s ``protocol`` names.

    >>> split_for("leave_last_one_out") is leave_last_out
    True
    """
    splits: dict[str, Split] = {"temporal": temporal_split, "leave_last_one_out": leave_last_out}
    try:
        return splits[protocol]
    except KeyError:
        raise ValueError(
            f"unknown protocol {protocol!r}; expected one of {sorted(splits)}"
        ) from None


def _user_counts(df: pd.DataFrame) -> np.ndarray:
    """Interactions per row's user, aligned with the rows."""
    missing = [c for c in ("user_id", "timestamp") if c not in df.columns]
    if missing:
        raise DataError(f"cannot split: missing column(s) {missing}")
    return df.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy(np.int64)


def _hold_out_last(df: pd.DataFrame, n_test: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mark, per user, the last ``n_test`` rows by (timestamp, position) as test.

    ``n_test`` is aligned with the rows (the same value on all of a user's rows).
    """
    users = df["user_id"].to_numpy()
    times = df["timestamp"].to_numpy(np.float64)
    position = np.arange(len(df))
    order = np.lexsort((position, times, users))  # stable: ties keep frame order
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(df)])
    rank = position - np.repeat(starts, sizes)  # 0-based rank in the user's history
    is_test = np.zeros(len(df), bool)
    is_test[order] = rank >= sizes.repeat(sizes) - n_test[order]
    return df[~is_test].copy(), df[is_test].copy()

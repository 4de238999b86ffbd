"""What every recommender model in trustfeed (ours and the benchmark peers) offers,
and the small pieces they all share: id indexing, the user-item matrix, top-k."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from trustfeed.errors import TrustfeedError

#: Padding in ``recommend`` output when fewer than ``k`` items can be returned.
PAD = -1


class RecommendError(TrustfeedError):
    """Base class for errors of the recommendation engine."""


class NotFittedError(RecommendError):
    """``recommend`` or ``save`` was called before ``fit``."""


class UnknownItemError(RecommendError, LookupError):
    """An item id the recommender has never seen (or has forgotten)."""


@runtime_checkable
class RecommenderModel(Protocol):
    """The surface the benchmark harness and the shared test suite use."""

    def fit(self, interactions: pd.DataFrame) -> Self: ...

    def recommend(
        self, user_ids: npt.ArrayLike, k: int = 20, exclude_seen: bool = True
    ) -> np.ndarray: ...


@runtime_checkable
class PersistentModel(RecommenderModel, Protocol):
    """A model whose state survives ``save`` and ``load`` (never through pickle)."""

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path) -> Self: ...


def index_of(sorted_ids: np.ndarray, ids: npt.ArrayLike) -> np.ndarray:
    """Position of each id in ``sorted_ids``, or -1 where it is absent.

    >>> index_of(np.array([3, 7, 9]), [7, 4, 9, 10]).tolist()
    [1, -1, 2, -1]
    """
    ids = np.asarray(ids, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    pos_clipped = np.minimum(pos, max(len(sorted_ids) - 1, 0))
    found = (
        (pos < len(sorted_ids)) & (sorted_ids[pos_clipped] == ids) if len(sorted_ids) else pos < 0
    )
    return np.where(found, pos_clipped, -1).astype(np.int64)


@dataclass(frozen=True)
class InteractionMatrix:
    """Users × items matrix of a frame in the interaction schema, with its id maps.

    Rows and columns are the sorted unique raw ids, so ``index_of`` maps back.
    Repeated (user, item) pairs add up their weights.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    matrix: sp.csr_matrix

    @classmethod
    def from_frame(
        cls,
        interactions: pd.DataFrame,
        weights: npt.ArrayLike | None = None,
        item_ids: np.ndarray | None = None,
    ) -> InteractionMatrix:
        users = np.unique(interactions["user_id"].to_numpy(np.int64))
        items = (
            np.unique(interactions["item_id"].to_numpy(np.int64)) if item_ids is None else item_ids
        )
        rows = index_of(users, interactions["user_id"].to_numpy(np.int64))
        cols = index_of(items, interactions["item_id"].to_numpy(np.int64))
        keep = cols >= 0
        data = (
            np.ones(len(rows), np.float32) if weights is None else np.asarray(weights, np.float32)
        )
        matrix = sp.csr_matrix(
            (data[keep], (rows[keep], cols[keep])), shape=(len(users), len(items))
        )
        matrix.sum_duplicates()
        return cls(users, items, matrix)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.user_ids), len(self.item_ids))


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Column indices of the ``k`` best scores per row, best first.

    ``exclude`` (same shape, any non-zero = excluded) and ``-inf`` scores never
    appear; short rows are padded with :data:`PAD`.

    >>> top_k(np.array([[0.1, 0.9, 0.5]]), 2).tolist()
    [[1, 2]]
    >>> top_k(np.array([[0.1, 0.9, 0.5]]), 4, sp.csr_matrix([[0, 1, 0]])).tolist()
    [[2, 0, -1, -1]]
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        r, c = exclude.nonzero()
        scores[r, c] = -np.inf
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    if kk == 0:
        return np.full((n_rows, k), PAD, dtype=np.int64)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    best_scores = np.take_along_axis(part_scores, order, axis=1)
    out = np.full((n_rows, k), PAD, dtype=np.int64)
    out[:, :kk] = np.where(np.isfinite(best_scores), best, PAD)
    return out


def unit_scaled(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``values[rows, cols]`` min-max scaled to [0, 1] within each row."""
    pool = np.full(values.shape, np.nan)
    pool[rows, cols] = values[rows, cols]
    lo = np.nanmin(pool, axis=1, initial=np.inf, where=~np.isnan(pool))
    hi = np.nanmax(pool, axis=1, initial=-np.inf, where=~np.isnan(pool))
    span = np.where(hi > lo, hi - lo, 1.0)
    return (values[rows, cols] - lo[rows]) / span[rows]


def grown(arr: np.ndarray, n: int, fill: Any) -> np.ndarray:
    if len(arr) >= n:
        return arr
    return np.concatenate([arr, np.full(n - len(arr), fill, dtype=arr.dtype)])


def resized(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    m = m.tocsr()
    if m.shape == (n, n):
        return m
    out = m.copy()
    out.resize((n, n))
    return out

"""Top-k ranking metrics over held-out items, in RecBole's conventions.

For each user (row) with a non-empty truth set T and a list R of
recommended item ids, best first:

* ``recall@k`` = |R[:k] ∩ T| / |T|  (RecBole's recall: divided by |T|, not
  by min(|T|, k), so it can stay below 1 when |T| > k);
* ``ndcg@k`` = DCG / IDCG with binary gains and discount 1/log2(rank + 1)
  (rank 1-based); IDCG puts min(|T|, k) hits at the top;
* ``hr@k`` = 1 if R[:k] holds at least one item of T, else 0;
* ``coverage@k`` = distinct items in all evaluated users' R[:k] / ``n_items``
  (only when ``n_items`` is given): how much of the catalogue a model uses.

The first three are means over users with a non-empty truth; users without
one are left out of every metric. ``-1`` (:data:`trustfeed.recommend._base.PAD`)
pads short lists and never counts. An item repeated in R counts once, at its
first rank; duplicates in T count once too. If R has fewer than k columns,
the missing ranks are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from trustfeed.recommend._base import RecommenderModel

PAD = -1


def evaluate_ranking(
    recommended: npt.ArrayLike,
    truth: Sequence[npt.ArrayLike],
    ks: Sequence[int] = (10, 20),
    n_items: int | None = None,
) -> dict[str, float]:
    """``recall@k``, ``ndcg@k``, ``hr@k`` (and ``coverage@k``) for each k in ``ks``.

    >>> scores = evaluate_ranking(np.array([[5, 3, -1], [1, 2, 4]]), [[3], [9]], ks=[2])
    >>> {name: round(value, 3) for name, value in scores.items()}
    {'recall@2': 0.5, 'ndcg@2': 0.315, 'hr@2': 0.5}
    """
    rec = np.asarray(recommended, dtype=np.int64)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (users × ranks), got shape {rec.shape}")
    if len(truth) != rec.shape[0]:
        raise ValueError(f"{rec.shape[0]} rows of recommendations but {len(truth)} truth sets")
    ks = _check_ks(ks)
    hits, n_truth = _hit_matrix(rec, truth)
    evaluated = n_truth > 0
    if not evaluated.any():
        raise ValueError("no user has a held-out item; nothing to evaluate")
    hits, n_truth, rec = hits[evaluated], n_truth[evaluated], rec[evaluated]
    discount = 1.0 / np.log2(np.arange(2, max(*ks, rec.shape[1]) + 2))
    ideal = np.r_[0.0, np.cumsum(discount)]  # ideal[m]: DCG of m hits on top
    out: dict[str, float] = {}
    for k in ks:
        top = hits[:, :k]
        n_hits = top.sum(axis=1)
        out[f"recall@{k}"] = float(np.mean(n_hits / n_truth))
        dcg = top @ discount[: top.shape[1]]
        out[f"ndcg@{k}"] = float(np.mean(dcg / ideal[np.minimum(n_truth, k)]))
        out[f"hr@{k}"] = float(np.mean(n_hits > 0))
        if n_items is not None:
            shown = rec[:, :k]
            out[f"coverage@{k}"] = len(np.unique(shown[shown != PAD])) / n_items if n_items else 0.0
    return out


def evaluate_model(
    model: RecommenderModel,
    train: pd.DataFrame,
    test: pd.DataFrame,
    ks: Sequence[int] = (10, 20),
) -> dict[str, float]:
    """Full-ranking metrics of a fitted ``model`` on ``test`` (see the module docstring).

    The users are those in ``test``; items they met in ``train`` are excluded
    by the model (``exclude_seen=True``); coverage is over the distinct items of
    ``train``, the catalogue the model could know.
    """
    ks = _check_ks(ks)
    users, truth = truth_by_user(test)
    recommended = model.recommend(users, k=max(ks), exclude_seen=True)
    return evaluate_ranking(recommended, truth, ks, n_items=int(train["item_id"].nunique()))


def truth_by_user(test: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """The sorted distinct users of ``test`` and, for each, the array of its items.

    >>> users, items = truth_by_user(pd.DataFrame({"user_id": [2, 1, 2], "item_id": [7, 8, 9]}))
    >>> users.tolist(), [a.tolist() for a in items]
    ([1, 2], [[8], [7, 9]])
    """
    user_ids = test["user_id"].to_numpy(np.int64)
    order = np.argsort(user_ids, kind="stable")
    users, starts = np.unique(user_ids[order], return_index=True)
    items = test["item_id"].to_numpy(np.int64)[order]
    return users, np.split(items, starts[1:]) if len(users) else []


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    checked = tuple(int(k) for k in ks)
    if not checked or min(checked) < 1:
        raise ValueError(f"ks must be positive cut-offs, got {list(ks)}")
    return checked


def _hit_matrix(rec: np.ndarray, truth: Sequence[npt.ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """``hits[i, j]``: rec[i, j] is in truth[i] (first occurrence only); |truth[i]| distinct."""
    n_users = rec.shape[0]
    arrays = [np.asarray(t, dtype=np.int64).ravel() for t in truth]
    sizes = np.array([len(a) for a in arrays], dtype=np.int64)
    truth_items = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    truth_rows = np.repeat(np.arange(n_users, dtype=np.int64), sizes)
    shown = rec != PAD
    # Dense codes for every id involved, so (row, item) fits one int64 key.
    vocab, codes = np.unique(np.r_[truth_items, rec[shown]], return_inverse=True)
    width = max(len(vocab), 1)
    truth_keys = np.unique(truth_rows * width + codes[: len(truth_items)])
    n_truth = np.bincount(truth_keys // width, minlength=n_users)
    rec_keys = np.full(rec.shape, -1, dtype=np.int64)
    rec_keys[shown] = np.nonzero(shown)[0] * width + codes[len(truth_items) :]
    flat = rec_keys.ravel()
    _, first_at = np.unique(flat, return_index=True)  # row-major: earliest rank
    first = np.zeros(flat.size, dtype=bool)
    first[first_at] = True
    hits = first & (flat >= 0) & np.isin(flat, truth_keys)
    return hits.reshape(rec.shape), n_truth

"""Impression-level metrics: how well scores order what each user was shown.

Meant for random-exposure logs such as KuaiRand's
(:func:`trustfeed.data.load_kuairand`), where the impressions were not chosen
by a recommender, so ordering them is an unbiased test. A *group* is usually
a user (or a user-day); metrics are computed per group and averaged with
equal weight over the groups where they are defined.

Ties in the scores are handled exactly, never by an arbitrary order: in the
AUC a tied positive/negative pair counts half; in the NDCG each item in a
block of tied scores gets the block's mean discount, which is the expected
DCG over all orders of the tie (McSherry & Najork, ECIR 2008). A constant
scorer therefore gets AUC 0.5 and the NDCG of a random order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd


def grouped_auc(groups: npt.ArrayLike, labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Mean per-group ROC AUC over the groups that have both a positive and a negative.

    ``labels`` are 0/1 (or booleans). Per group, AUC = (sum of the positives'
    average ranks − P(P+1)/2) / (P·N), the Mann-Whitney form.

    >>> grouped_auc([1, 1, 1, 2, 2], [1, 0, 0, 1, 1], [0.9, 0.1, 0.9, 0.3, 0.2])
    0.75
    """
    codes, (y, s) = _aligned(groups, labels, scores)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0/1 or booleans")
    ranks = pd.Series(s).groupby(codes, sort=False).rank(method="average").to_numpy()
    n = np.bincount(codes).astype(np.float64)
    n_pos = np.bincount(codes, weights=y)
    rank_sum = np.bincount(codes, weights=ranks * y)
    n_neg = n - n_pos
    defined = (n_pos > 0) & (n_neg > 0)
    if not defined.any():
        raise ValueError("no group has both a positive and a negative label")
    p, q = n_pos[defined], n_neg[defined]
    return float(np.mean((rank_sum[defined] - p * (p + 1) / 2) / (p * q)))


def grouped_ndcg(
    groups: npt.ArrayLike, gains: npt.ArrayLike, scores: npt.ArrayLike, k: int | None = None
) -> float:
    """Mean per-group NDCG(@k) of the score order against graded, non-negative ``gains``.

    Gains are used as they are (linear, not 2^g − 1); the discount is
    1/log2(rank + 1); groups whose gains are all zero are skipped.

    >>> grouped_ndcg([1, 1, 1], [0, 1, 0], [0.2, 0.5, 0.1])
    1.0
    """
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    codes, (g, s) = _aligned(groups, gains, scores)
    if (g < 0).any() or not np.isfinite(g).all():
        raise ValueError("gains must be finite and non-negative")
    by_score = np.lexsort((-s, codes))
    discount = _rank_discount(codes[by_score], k)
    sorted_codes, sorted_scores = codes[by_score], s[by_score]
    new_block = np.r_[
        True, (sorted_codes[1:] != sorted_codes[:-1]) | (sorted_scores[1:] != sorted_scores[:-1])
    ]
    block = np.cumsum(new_block) - 1
    tie_discount = np.bincount(block, weights=discount) / np.bincount(block)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    dcg = np.bincount(sorted_codes, weights=g[by_score] * tie_discount[block], minlength=n_groups)
    by_gain = np.lexsort((-g, codes))
    idcg = np.bincount(codes[by_gain], weights=g[by_gain] * discount, minlength=n_groups)
    defined = idcg > 0
    if not defined.any():
        raise ValueError("every group has only zero gains; NDCG is undefined")
    return float(np.mean(dcg[defined] / idcg[defined]))


def _rank_discount(sorted_codes: np.ndarray, k: int | None) -> np.ndarray:
    """1/log2(rank + 1) for each row of group-sorted codes; 0 beyond rank ``k``."""
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(sorted_codes)])
    rank = np.arange(len(sorted_codes)) - np.repeat(starts, sizes) + 1
    discount = 1.0 / np.log2(rank + 1.0)
    if k is not None:
        discount[rank > k] = 0.0
    return discount


def _aligned(
    groups: npt.ArrayLike, values: npt.ArrayLike, scores: npt.ArrayLike
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Dense group codes plus float arrays, after checking lengths and NaNs."""
    codes, _ = pd.factorize(np.asarray(groups).ravel(), use_na_sentinel=False)
    v = np.asarray(values, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not len(codes) == len(v) == len(s):
        raise ValueError(f"lengths differ: groups {len(codes)}, values {len(v)}, scores {len(s)}")
    if len(s) == 0:
        raise ValueError("no impressions to evaluate")
    if np.isnan(s).any() or np.isnan(v).any():
        raise ValueError("scores and labels/gains must not be NaN")
    return codes.astype(np.int64), (v, s)

"""grouped_auc / grouped_ndcg against hand-computed values."""

from __future__ import annotations

from math import log2

import numpy as np
import pytest

from trustfeed.evaluation import grouped_auc, grouped_ndcg


def test_auc_by_hand_with_a_tie_and_a_one_class_group() -> None:
    groups = ["a", "a", "a", "b", "b", "c", "c"]
    labels = [1, 0, 0, 1, 1, 0, 1]
    scores = [0.9, 0.1, 0.9, 0.3, 0.2, 0.8, 0.2]
    # a: the positive (0.9) beats 0.1 (1) and ties 0.9 (½) → 1.5 / (1 · 2) = 0.75.
    # b: only positives → skipped.  c: the positive (0.2) loses to 0.8 → 0.
    assert grouped_auc(groups, labels, scores) == pytest.approx((0.75 + 0.0) / 2)


def test_auc_extremes() -> None:
    groups, labels = [1, 1, 1, 1], [True, False, True, False]
    assert grouped_auc(groups, labels, [4, 1, 3, 2]) == 1.0
    assert grouped_auc(groups, labels, [1, 4, 2, 3]) == 0.0
    assert grouped_auc(groups, labels, [7, 7, 7, 7]) == 0.5  # constant scorer


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 5, 200)
    labels = rng.integers(0, 2, 200)
    scores = rng.integers(0, 4, 200).astype(float)  # many ties
    per_group = []
    for g in np.unique(groups):
        pos = scores[(groups == g) & (labels == 1)]
        neg = scores[(groups == g) & (labels == 0)]
        if len(pos) and len(neg):
            diff = pos[:, None] - neg[None, :]
            per_group.append(((diff > 0) + 0.5 * (diff == 0)).mean())
    assert grouped_auc(groups, labels, scores) == pytest.approx(np.mean(per_group))


def test_auc_bad_input() -> None:
    with pytest.raises(ValueError, match="0/1"):
        grouped_auc([1, 1], [0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="no group has both"):
        grouped_auc([1, 2], [0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="lengths differ"):
        grouped_auc([1, 1], [0, 1], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        grouped_auc([1, 1], [0, 1], [0.1, np.nan])


def test_ndcg_by_hand() -> None:
    groups = [1, 1, 1, 2, 2, 3, 3]
    gains = [3, 0, 1, 0, 0, 1, 1]
    scores = [0.1, 0.9, 0.5, 0.3, 0.4, 0.2, 0.7]
    # Group 1 in score order has gains 0, 1, 3: DCG = 0 + 1/log2(3) + 3/log2(4) = 2.13093;
    # ideal order 3, 1, 0: IDCG = 3 + 1/log2(3) = 3.63093 → 0.58688.
    # Group 2: all gains zero → skipped.  Group 3: both gains 1 → 1.
    ndcg1 = (1 / log2(3) + 3 / 2) / (3 + 1 / log2(3))
    assert grouped_ndcg(groups, gains, scores) == pytest.approx((ndcg1 + 1) / 2)
    # @1: group 1's top item has gain 0 → 0; group 3 → 1.
    assert grouped_ndcg(groups, gains, scores, k=1) == pytest.approx(0.5)


def test_ndcg_ties_take_the_mean_discount() -> None:
    # Two tied items, gains 1 and 0: each gets (1 + 1/log2(3)) / 2; IDCG = 1.
    assert grouped_ndcg([1, 1], [1, 0], [0.5, 0.5]) == pytest.approx((1 + 1 / log2(3)) / 2)
    # @1 the tie shares discounts 1 and 0 → ½, the chance that the gain-1 item is on top.
    assert grouped_ndcg([1, 1], [1, 0], [0.5, 0.5], k=1) == pytest.approx(0.5)
    # The input order of a tie does not matter.
    assert grouped_ndcg([1, 1], [0, 1], [0.5, 0.5]) == grouped_ndcg([1, 1], [1, 0], [0.5, 0.5])


def test_ndcg_bad_input() -> None:
    with pytest.raises(ValueError, match="only zero gains"):
        grouped_ndcg([1, 1], [0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-negative"):
        grouped_ndcg([1, 1], [1, -1], [0.1, 0.2])
    with pytest.raises(ValueError, match="k must be at least 1"):
        grouped_ndcg([1], [1], [0.1], k=0)
    with pytest.raises(ValueError, match="no impressions"):
        grouped_ndcg([], [], [])


def test_on_the_shipped_kuairand_log() -> None:
    from trustfeed.data import load_kuairand

    log = load_kuairand()
    users = log["user_id"].to_numpy()
    # A constant scorer is exactly at chance, ties and all.
    assert grouped_auc(users, log["is_click"], np.zeros(len(log))) == 0.5
    # long_view is defined by play time, so ranking by play time must nearly recover it.
    assert grouped_auc(users, log["long_view"], log["play_time_ms"]) > 0.9
    assert 0.0 < grouped_ndcg(users, log["is_click"], np.zeros(len(log)), k=10) < 1.0

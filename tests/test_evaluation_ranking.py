"""evaluate_ranking / evaluate_model against hand-computed values."""

from __future__ import annotations

from math import log2

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from trustfeed.evaluation import evaluate_model, evaluate_ranking, truth_by_user
from trustfeed.evaluation._ranking import PAD
from trustfeed.recommend._base import PAD as MODEL_PAD

# Three users; the third has no held-out item, so it counts nowhere (not even in coverage).
RECOMMENDED = np.array([[1, 2, 3, 4], [5, 1, PAD, PAD], [7, 8, 9, 10]])
TRUTH = [np.array([2, 4, 9]), np.array([5]), np.array([], dtype=np.int64)]


def test_two_users_by_hand() -> None:
    got = evaluate_ranking(RECOMMENDED, TRUTH, ks=(2, 4), n_items=10)
    # User 0: |T| = 3, hits at ranks 2 and 4.
    #   @2: recall 1/3; DCG = 1/log2(3); IDCG (min(3, 2) = 2 hits) = 1 + 1/log2(3).
    #   @4: recall 2/3; DCG = 1/log2(3) + 1/log2(5); IDCG (3 hits) = 1 + 1/log2(3) + 1/2.
    # User 1: |T| = 1, hit at rank 1: recall = ndcg = hr = 1 at both cut-offs.
    ndcg0_2 = (1 / log2(3)) / (1 + 1 / log2(3))  # 0.38685
    ndcg0_4 = (1 / log2(3) + 1 / log2(5)) / (1 + 1 / log2(3) + 0.5)  # 0.49819
    expected = {
        "recall@2": (1 / 3 + 1) / 2,
        "ndcg@2": (ndcg0_2 + 1) / 2,
        "hr@2": 1.0,
        "coverage@2": 3 / 10,  # {1, 2} ∪ {5, 1} = {1, 2, 5}
        "recall@4": (2 / 3 + 1) / 2,
        "ndcg@4": (ndcg0_4 + 1) / 2,
        "hr@4": 1.0,
        "coverage@4": 5 / 10,  # {1, 2, 3, 4, 5}; padding is not an item
    }
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_no_coverage_without_n_items_and_hr_zero() -> None:
    got = evaluate_ranking(np.array([[1, 2]]), [np.array([3])], ks=(2,))
    assert got == {"recall@2": 0.0, "ndcg@2": 0.0, "hr@2": 0.0}


def test_duplicates_count_once() -> None:
    # Item 3 twice in the list and twice in the truth: one relevant item, hit at rank 1.
    got = evaluate_ranking(np.array([[3, 3, 4]]), [np.array([3, 3])], ks=(3,))
    assert got == {"recall@3": 1.0, "ndcg@3": 1.0, "hr@3": 1.0}


def test_cut_off_longer_than_the_list() -> None:
    # One column but k = 5: rank 1 hits; |T| = 2 so IDCG = 1 + 1/log2(3).
    got = evaluate_ranking(np.array([[1]]), [np.array([1, 2])], ks=(5,))
    assert got["recall@5"] == 0.5
    assert got["ndcg@5"] == pytest.approx(1 / (1 + 1 / log2(3)))


def test_padding_never_matches() -> None:
    got = evaluate_ranking(np.array([[PAD, PAD]]), [np.array([PAD])], ks=(2,), n_items=4)
    assert got == {"recall@2": 0.0, "ndcg@2": 0.0, "hr@2": 0.0, "coverage@2": 0.0}
    assert PAD == MODEL_PAD


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="2-D"):
        evaluate_ranking(np.array([1, 2]), [np.array([1])])
    with pytest.raises(ValueError, match="2 rows of recommendations but 1 truth sets"):
        evaluate_ranking(np.array([[1], [2]]), [np.array([1])])
    with pytest.raises(ValueError, match="no user has a held-out item"):
        evaluate_ranking(np.array([[1]]), [np.array([], dtype=np.int64)])
    with pytest.raises(ValueError, match="positive cut-offs"):
        evaluate_ranking(np.array([[1]]), [np.array([1])], ks=(0,))


def test_inputs_not_mutated() -> None:
    recommended, truth = RECOMMENDED.copy(), [t.copy() for t in TRUTH]
    evaluate_ranking(recommended, truth, ks=(2,), n_items=10)
    np.testing.assert_array_equal(recommended, RECOMMENDED)
    for a, b in zip(truth, TRUTH, strict=True):
        np.testing.assert_array_equal(a, b)


class _FixedModel:
    """Recommends items 10, 11, 12, … to everyone and records how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], int, bool]] = []

    def fit(self, interactions: pd.DataFrame) -> _FixedModel:
        return self

    def recommend(
        self, user_ids: npt.ArrayLike, k: int = 20, exclude_seen: bool = True
    ) -> np.ndarray:
        users = np.asarray(user_ids)
        self.calls.append((users.tolist(), k, exclude_seen))
        return np.tile(np.arange(10, 10 + k), (len(users), 1))


def test_evaluate_model() -> None:
    train = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 11, 12, 13]})
    test = pd.DataFrame({"user_id": [2, 1, 2], "item_id": [11, 20, 10]})
    model = _FixedModel()
    got = evaluate_model(model, train, test, ks=(1, 2))
    assert model.calls == [([1, 2], 2, True)]
    # User 1: truth {20}: no hit. User 2: truth {11, 10}: hits at ranks 1 and 2.
    assert got["recall@1"] == pytest.approx((0 + 1 / 2) / 2)
    assert got["recall@2"] == pytest.approx((0 + 1) / 2)
    assert got["hr@1"] == 0.5
    assert got["coverage@1"] == 1 / 4  # item 10 of the 4 train items
    assert got["coverage@2"] == 2 / 4


def test_truth_by_user_empty() -> None:
    users, items = truth_by_user(pd.DataFrame({"user_id": [], "item_id": []}))
    assert len(users) == 0 and items == []

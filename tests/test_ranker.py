"""The multi-task ranker, its feature builder, and the KuaiRand ranking check."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from trustfeed.evaluation import grouped_auc
from trustfeed.recommend._base import NotFittedError, RecommendError
from trustfeed.recommend._features import FeatureError, ImpressionFeatures, impression_labels
from trustfeed.recommend._ranker import HAVE_LIGHTGBM, MultiTaskRanker, RankerError

BACKENDS = [
    "mlp",
    pytest.param("lightgbm", marks=pytest.mark.skipif(not HAVE_LIGHTGBM, reason="no lightgbm")),
]
FAST: dict[str, dict[str, Any]] = {
    "mlp": {"epochs": 8},
    "lightgbm": {"num_boost_round": 30, "min_data_in_leaf": 20},
}


def _synthetic(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Long view driven by column 0, watch ratio by column 1, hate by column 2; no likes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    long_view = (rng.random(n) < 1 / (1 + np.exp(-2.5 * x[:, 0]))).astype(float)
    ratio = np.clip(1 / (1 + np.exp(-x[:, 1])) + rng.normal(0, 0.1, n), 0, 1)
    ratio[:50] = np.nan  # unknown durations
    hate = (rng.random(n) < 0.05 / (1 + np.exp(-3 * x[:, 2]))).astype(float)
    return x, {"long_view": long_view, "watch_ratio": ratio, "hate": hate, "like": np.zeros(n)}


def _ranker(backend: str, **kw: Any) -> MultiTaskRanker:
    return MultiTaskRanker(seed=3, backend=backend, **{**FAST[backend], **kw})


@pytest.mark.parametrize("backend", BACKENDS)
def test_shapes_and_dropped_task(backend: str) -> None:
    x, labels = _synthetic()
    r = _ranker(backend).fit(x, labels)
    assert r.tasks_ == ["long_view", "watch_ratio", "hate"]
    assert r.dropped_ == {"like": "single class: only 0"}
    assert r.kinds_["watch_ratio"] == "ratio"
    pred = r.predict(x[:7])
    assert set(pred) == set(r.tasks_)
    assert all(p.shape == (7,) and ((p >= 0) & (p <= 1)).all() for p in pred.values())
    assert r.score(x[:7]).shape == (7,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_beats_random_on_known_signal(backend: str) -> None:
    x, labels = _synthetic(n=2000, seed=1)
    r = _ranker(backend).fit(x, labels)
    test_x, test_labels = _synthetic(seed=2)
    p = r.predict(test_x)["long_view"]
    assert grouped_auc(np.zeros(len(p)), test_labels["long_view"], p) > 0.7


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_round_trip(backend: str, tmp_path) -> None:
    x, labels = _synthetic()
    r = _ranker(backend, weights={"hate": -2.0}).fit(x, labels)
    r.save(tmp_path / "ranker.npz")
    back = MultiTaskRanker.load(tmp_path / "ranker.npz")
    assert back.tasks_ == r.tasks_ and back.dropped_ == r.dropped_
    for task, p in r.predict(x).items():
        np.testing.assert_array_equal(back.predict(x)[task], p)
    np.testing.assert_array_equal(back.score(x), r.score(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_result_and_inputs_untouched(backend: str) -> None:
    x, labels = _synthetic()
    x_copy, labels_copy = x.copy(), {k: v.copy() for k, v in labels.items()}
    a = _ranker(backend).fit(x, labels).score(x)
    b = _ranker(backend).fit(x, labels).score(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, x_copy)
    for k, v in labels.items():
        np.testing.assert_array_equal(v, labels_copy[k])


def test_wrong_width_and_unfitted_errors() -> None:
    x, labels = _synthetic(n=500)
    r = _ranker("mlp", feature_names=["a", "b", "c", "d"])
    with pytest.raises(NotFittedError):
        r.predict(x)
    r.fit(x, labels)
    with pytest.raises(RankerError, match=r"3 columns.*fitted on 4") as info:
        r.predict(x[:, :3])
    assert isinstance(info.value, RecommendError)


def test_no_usable_task_and_bad_labels() -> None:
    x = np.zeros((10, 2), np.float32)
    with pytest.raises(RankerError, match="no task can be learned"):
        MultiTaskRanker(backend="mlp").fit(x, {"like": np.zeros(10), "hate": np.ones(10)})
    with pytest.raises(RankerError, match=r"\[0, 1\]"):
        MultiTaskRanker(backend="mlp").fit(x, {"watch_ratio": np.full(10, 2.0)})
    with pytest.raises(RankerError, match="no labels"):
        MultiTaskRanker(tasks=["like"], backend="mlp").fit(x, {"hate": np.ones(10)})


@pytest.mark.parametrize("backend", BACKENDS)
def test_margin_column_is_the_starting_logit(backend: str, tmp_path) -> None:
    """A task with a margin learns corrections to that column's logit, and keeps it on reload."""
    x, labels = _synthetic()
    logit = (2.5 * x[:, 0]).astype(np.float32)  # the true long-view logit
    xm = np.column_stack([x[:, 1:], logit])
    names = ["b", "c", "d", "prior"]
    r = _ranker(backend, feature_names=names, margins={"long_view": "prior"}).fit(xm, labels)
    plain = _ranker(backend, feature_names=names).fit(xm, labels)
    test_x, test_labels = _synthetic(seed=2)
    test_xm = np.column_stack([test_x[:, 1:], 2.5 * test_x[:, 0]])
    p = r.predict(test_xm)["long_view"]
    assert grouped_auc(np.zeros(len(p)), test_labels["long_view"], p) > 0.75
    # the margin is used as a logit: the fitted probabilities stay calibrated
    assert abs(p.mean() - test_labels["long_view"].mean()) < 0.03
    assert not np.allclose(p, plain.predict(test_xm)["long_view"])
    r.save(tmp_path / "ranker.npz")
    back = MultiTaskRanker.load(tmp_path / "ranker.npz")
    assert back.margins == {"long_view": "prior"}
    np.testing.assert_array_equal(back.predict(test_xm)["long_view"], p)


def test_unknown_margin_column() -> None:
    x, labels = _synthetic(n=300)
    with pytest.raises(RankerError, match="no feature named 'nope'"):
        _ranker("mlp", margins={"long_view": "nope"}).fit(x, labels)


def test_negative_feedback_lowers_the_score() -> None:
    x, labels = _synthetic()
    r = _ranker("mlp").fit(x, labels)
    heads = r.predict(x)
    expected = sum(
        w * heads[t] / r.base_rates_[t]
        for t, w in {"long_view": 1.0, "watch_ratio": 1.0, "hate": -0.25}.items()
    )
    np.testing.assert_allclose(r.score(x), expected, rtol=1e-6)
    only_hate = MultiTaskRanker(weights={"long_view": 0, "watch_ratio": 0}, backend="mlp")
    only_hate.fit(x, labels)
    assert np.all(only_hate.score(x) <= 0)


# -- the feature builder ---------------------------------------------------------------------


def _log(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 30, n),
            "item_id": rng.integers(0, 60, n),
            "duration_ms": rng.choice([0.0, 8e3, 3e4, 9e4, 2e5], n),
            "hourmin": rng.integers(0, 24, n) * 100,
            "long_view": rng.integers(0, 2, n),
            "is_like": (rng.random(n) < 0.1).astype(int),
            "play_time_ms": rng.integers(0, 60_000, n),
        }
    )
    return frame, impression_labels(frame)


def test_training_rows_do_not_see_their_own_label() -> None:
    frame, labels = _log()
    base = ImpressionFeatures(seed=1).fit_transform(frame, labels)
    for row in (0, 17, 300):
        flipped = {k: v.copy() for k, v in labels.items()}
        flipped["long_view"][row] = 1 - flipped["long_view"][row]
        again = ImpressionFeatures(seed=1).fit_transform(frame, flipped)
        np.testing.assert_array_equal(again[row], base[row])
        assert not np.array_equal(again, base)  # the other folds do see it


def test_evaluated_rows_use_training_stats_only(tmp_path) -> None:
    frame, labels = _log()
    train, test = frame.iloc[:400], frame.iloc[400:].reset_index(drop=True)
    fb = ImpressionFeatures().fit(train, {k: v[:400] for k, v in labels.items()})
    x = fb.transform(test)
    relabelled = test.assign(long_view=1 - test["long_view"], is_like=1)
    np.testing.assert_array_equal(fb.transform(relabelled), x)
    assert x.shape == (len(test), len(fb.feature_names_))
    fb.save(tmp_path / "features.npz")
    np.testing.assert_array_equal(
        ImpressionFeatures.load(tmp_path / "features.npz").transform(test), x
    )


def test_extra_columns_hook() -> None:
    frame, labels = _log()

    def affinity(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return ((users * 7 + items) % 5).astype(np.float32)

    fb = ImpressionFeatures(extra=affinity, extra_names=["cf_score"])
    x = fb.fit_transform(frame, labels)
    assert fb.feature_names_[-1] == "cf_score"
    np.testing.assert_array_equal(
        x[:, -1], affinity(frame["user_id"].to_numpy(), frame["item_id"].to_numpy())
    )
    fb.extra = None
    with pytest.raises(FeatureError, match="extra"):
        fb.transform(frame)


def test_unknown_duration_keeps_its_own_bucket() -> None:
    """Regression: a duration of 0 (unknown) was filled with the median and so lost, yet in
    KuaiRand those impressions have a fifth of the long-view rate (1.8 % vs 8.6 %)."""
    frame, labels = _log()
    items = frame["item_id"].to_numpy()
    durations = np.array([0.0, 8e3, 3e4, 9e4, 2e5])[items % 5]  # one duration per item
    frame = frame.assign(duration_ms=durations)
    fb = ImpressionFeatures()
    x = fb.fit_transform(frame, labels)
    unknown = durations == 0
    bucket = x[:, fb.feature_names_.index("duration_bucket")]
    assert np.unique(bucket[unknown]).size == 1
    assert not np.isin(bucket[unknown], bucket[~unknown]).any()
    assert np.isnan(x[unknown, fb.feature_names_.index("log_duration_s")]).all()


def test_effects_follow_the_labels() -> None:
    """The additive (LR-style) item effect ranks items by their long-view rate."""
    rng = np.random.default_rng(4)
    n = 4000
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 100, n),
            "item_id": rng.integers(0, 40, n),
            "duration_ms": np.full(n, 3e4),
        }
    )
    quality = np.linspace(-2, 2, 40)
    p = 1 / (1 + np.exp(-quality[frame["item_id"].to_numpy()]))
    fb = ImpressionFeatures(play_times=False)
    fb.fit(frame, {"long_view": (rng.random(n) < p).astype(float)})
    probe = pd.DataFrame({"user_id": np.zeros(40, int), "item_id": np.arange(40)})
    fx = fb.transform(probe)[:, fb.feature_names_.index("item_effect_long_view")]
    assert np.corrcoef(fx, quality)[0, 1] > 0.9


def test_play_time_columns_read_the_users_own_habits() -> None:
    """A user who always watches 10 s completes a 5 s video and not a 60 s one."""
    frame = pd.DataFrame(
        {
            "user_id": np.repeat([1, 2], 50),
            "item_id": np.arange(100),
            "duration_ms": np.full(100, 3e4),
            "play_time_ms": np.r_[np.full(50, 1e4), np.full(50, 1e3)],
            "long_view": np.r_[np.ones(50), np.zeros(50)],
        }
    )
    fb = ImpressionFeatures()
    fb.fit(frame, impression_labels(frame))
    probe = pd.DataFrame(
        {"user_id": [1, 1, 2], "item_id": [0, 0, 0], "duration_ms": [5e3, 6e4, 5e3]}
    )
    x = fb.transform(probe)
    full = x[:, fb.feature_names_.index("user_play_full")]
    assert full[0] > 0.7 > 0.3 > full[1] and full[2] < 0.3


def test_old_feature_format_is_refused(tmp_path) -> None:
    frame, labels = _log()
    fb = ImpressionFeatures().fit(frame, labels)
    fb.save(tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz", allow_pickle=False) as z:
        arrays = dict(z)
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "format": 1}))
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(FeatureError, match="refit"):
        ImpressionFeatures.load(tmp_path / "old.npz")


def test_impression_labels_handle_zero_duration() -> None:
    frame, labels = _log()
    zero = frame["duration_ms"].to_numpy() == 0
    assert np.isnan(labels["watch_ratio"][zero]).all()
    assert ((labels["watch_ratio"][~zero] >= 0) & (labels["watch_ratio"][~zero] <= 1)).all()


# -- KuaiRand ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_kuairand_ranker_beats_popularity_and_logistic_regression() -> None:
    """Measured (seed 0): long-view AUC 0.5920 (lightgbm) / 0.5866 (mlp), one-hot logistic
    regression 0.5787, item rate 0.5685, item count 0.4963 (over seeds 0-2 the lightgbm
    head is 0.5898 ± 0.0018); the margins asserted are a fraction of that."""
    try:
        from trustfeed.data import load_kuairand

        log = load_kuairand()
    except (ImportError, FileNotFoundError) as exc:
        pytest.skip(f"KuaiRand log unavailable: {exc}")
    from trustfeed.bench._ranker_bench import run_ranker_bench

    backend = "lightgbm" if HAVE_LIGHTGBM else "mlp"
    rows = {
        r.model: r.metrics["long_view"]["auc"] for r in run_ranker_bench(log, backends=(backend,))
    }
    ours = rows[f"ranker/{backend} (task head)"]
    assert ours > rows["popularity (count)"] + 0.06
    assert ours > rows["popularity (rate)"] + 0.01
    assert ours > rows["logistic regression"] + 0.004

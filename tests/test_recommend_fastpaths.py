"""Fast paths behind the serving API, each against its plain reference: the norm-pruned
ANN search, the QuickScorer tree kernel, the read-only seen pairs, the readers-writer lock."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from trustfeed.recommend import MultiTaskRanker
from trustfeed.recommend._history import SeenPairs
from trustfeed.recommend._rwlock import ReadWriteLock
from trustfeed.recommend._sources import AnnIndex
from trustfeed.recommend._trees import compile_boosters

lgb = pytest.importorskip("lightgbm")


def _uneven_vectors(n: int = 6_000, dim: int = 16) -> np.ndarray:
    """Like spectral embeddings: most rows zero, the rest with heavy-tailed norms."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)) * rng.pareto(1.5, (n, 1))
    vectors[rng.random(n) < 0.6] = 0.0
    return vectors.astype(np.float32)


@pytest.mark.parametrize("k", [1, 50, 200])
def test_norm_pruned_search_equals_the_full_scan(k) -> None:
    index = AnnIndex.build(_uneven_vectors())
    assert index.by_norm is not None  # large enough to prune
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((12, 16)).astype(np.float32)
    queries[0] = -np.abs(queries[0]) * 1e-3  # weak query: the scan cannot stop early
    for q in queries:
        sims, rows = index.search(q[None, :], k)
        want_sims, want_rows = index.index.search(q[None, :], k)
        np.testing.assert_array_equal(sims, want_sims)
        nonzero = want_sims != 0  # rows of zero similarity tie: any of them will do
        np.testing.assert_array_equal(rows[nonzero], want_rows[nonzero])


def test_many_queries_still_use_one_full_search() -> None:
    index = AnnIndex.build(_uneven_vectors())
    queries = np.random.default_rng(2).standard_normal((40, 16)).astype(np.float32)
    sims, rows = index.search(queries, 10)
    want_sims, want_rows = index.index.search(queries, 10)
    np.testing.assert_array_equal(sims, want_sims)
    np.testing.assert_array_equal(rows, want_rows)


def _ranker(x: np.ndarray, seed: int = 0) -> MultiTaskRanker:
    rng = np.random.default_rng(seed)
    signal = np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 1])
    labels = {
        "like": (signal + rng.normal(0, 1, len(x)) > 0.5).astype(np.float32),
        "watch_ratio": np.clip(0.5 + 0.2 * signal + rng.normal(0, 0.1, len(x)), 0, 1),
    }
    return MultiTaskRanker(backend="lightgbm", seed=seed, num_boost_round=30).fit(x, labels)


def test_quickscorer_reproduces_lightgbm_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3_000, 5)).astype(np.float32)
    ranker = _ranker(x)
    boosters = list(ranker._boosters.values())
    compiled = compile_boosters(boosters, 5)
    assert compiled is not None and ranker.compile()
    probe = rng.standard_normal((500, 5)).astype(np.float32)
    probe[:20, 2] = np.nan  # no missing-value splits: LightGBM reads NaN as 0
    probe[20:40, 3] = 0.0
    want = np.column_stack([b.predict(probe, raw_score=True) for b in boosters])
    np.testing.assert_array_equal(compiled.raw_scores(probe), want)
    big = rng.standard_normal((5_000, 5)).astype(np.float32)  # past the compiled size
    for task, p in ranker.predict(big).items():
        raw = ranker._boosters[task].predict(big, raw_score=True)
        np.testing.assert_allclose(p, 1 / (1 + np.exp(-raw)), rtol=1e-12)


def test_trees_with_missing_value_splits_stay_on_lightgbm() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3_000, 4)).astype(np.float32)
    x[rng.random(3_000) < 0.3, 0] = np.nan  # LightGBM learns NaN-aware splits
    ranker = _ranker(x, seed=1)
    assert compile_boosters(list(ranker._boosters.values()), 4) is None
    assert not ranker.compile()
    probe = x[:100]
    got = ranker.predict(probe)
    for task, booster in ranker._boosters.items():
        raw = booster.predict(probe, raw_score=True)
        np.testing.assert_allclose(got[task], 1 / (1 + np.exp(-raw)), rtol=1e-12)


def test_seen_pairs_are_read_without_being_changed() -> None:
    seen = SeenPairs()
    seen.add(np.array([0, 0, 1, 3]), np.array([5, 6, 5, 2]))
    seen.compact()
    seen.add(np.array([0, 2, 3]), np.array([7, 1, 2]))  # stays in the buffer
    base, buffered = seen.base, len(seen._users)
    assert sorted(seen.row(0).tolist()) == [5, 6, 7]
    assert seen.row(3).tolist() == [2, 2] and seen.row(9).tolist() == []
    got = seen.matrix(np.array([0, 3, 9, 2, 0]), 10).toarray()
    assert seen.base is base and len(seen._users) == buffered  # nothing was merged
    seen.compact()
    want = seen.matrix(np.array([0, 3, 9, 2, 0]), 10).toarray()
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) <= {0, 1}


def test_readers_share_the_lock() -> None:
    lock = ReadWriteLock()
    inside = threading.Barrier(2, timeout=60)  # both readers inside at once, or it breaks
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with lock.read():
                inside.wait()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and lock.readers == 0


def test_readers_never_see_half_a_write() -> None:
    lock = ReadWriteLock()
    state = {"a": 0, "b": 0}
    torn: list[tuple[int, int]] = []

    def write() -> None:
        for i in range(1, 2_001):
            with lock.write():
                state["a"] = i
                state["b"] = i

    def read() -> None:
        for _ in range(2_000):
            with lock.read():
                if state["a"] != state["b"]:
                    torn.append((state["a"], state["b"]))

    threads = [threading.Thread(target=f) for f in (read, write, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not torn and state == {"a": 2_000, "b": 2_000}
    assert lock.readers == 0 and not lock.writing


def test_the_gil_free_lapack_call_refuses_what_it_cannot_solve() -> None:
    from trustfeed.recommend import RecommendError
    from trustfeed.recommend._itemitem import _ease_dense, _lapack_lower

    with pytest.raises(RecommendError, match="positive definite"):
        _ease_dense(-10 * np.eye(4, dtype=np.float32), 1.0)
    with pytest.raises(RecommendError, match="float32"):
        _lapack_lower("spotrf", np.eye(3))

"""The benchmark peers: one shared suite for all, plus EASE against its formula."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from trustfeed.bench import (
    EASE,
    PEERS,
    BenchError,
    ImplicitALS,
    ImplicitBPR,
    LightFMWarp,
    MatrixPeer,
    Popularity,
)
from trustfeed.bench._peers import ease_weights
from trustfeed.recommend._base import PAD, NotFittedError, PersistentModel, RecommenderModel

pytest.importorskip("implicit", reason="needs the bench extra")
pytest.importorskip("lightfm", reason="needs the bench extra")

# Small and single-threaded where the library's SGD is racy, so runs repeat exactly.
SMALL: dict[str, dict[str, Any]] = {
    "popularity": {},
    "ease": {"lam": 10.0},
    "als": {"factors": 8, "iterations": 5},
    "bpr": {"factors": 8, "iterations": 20, "num_threads": 1},
    "lightfm": {"no_components": 8, "epochs": 5, "num_threads": 1},
}


def tiny_frame(seed: int = 0, n: int = 400) -> pd.DataFrame:
    """40 users × 30 items (ids 100…129), with repeats; user 7 saw item 100 only."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 40, n).astype(np.int64),
            "item_id": (100 + rng.integers(0, 30, n)).astype(np.int64),
            "timestamp": np.arange(n, dtype=np.float64),
        }
    )
    frame = frame[frame["user_id"] != 7]
    extra = pd.DataFrame({"user_id": [7], "item_id": [100], "timestamp": [float(n)]})
    return pd.concat([frame, extra], ignore_index=True).astype({"user_id": "int64"})


def make(name: str, seed: int = 42) -> MatrixPeer:
    return PEERS[name](seed=seed, **SMALL[name])


@pytest.fixture(params=sorted(PEERS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_peers_follow_the_model_protocol(name: str) -> None:
    assert isinstance(make(name), RecommenderModel)


def test_shape_ids_and_padding(name: str) -> None:
    frame = tiny_frame()
    recs = make(name).fit(frame).recommend([0, 1, 7], k=35)
    assert recs.shape == (3, 35) and recs.dtype == np.int64
    for row in recs:
        shown = row[row != PAD]
        assert set(shown) <= set(frame["item_id"]), "only training items"
        assert len(set(shown)) == len(shown), "no repeats"
        assert (row[len(shown) :] == PAD).all(), "padding only at the end"
    assert (recs[2] != PAD).sum() == 29, "user 7 saw 1 of 30 items"


def test_exclude_seen(name: str) -> None:
    frame = tiny_frame()
    model = make(name).fit(frame)
    users = np.arange(40)
    recs = model.recommend(users, k=30, exclude_seen=True)
    seen = frame.groupby("user_id")["item_id"].agg(set)
    for user, row in zip(users, recs, strict=True):
        if user in seen.index:
            assert not set(row) & seen[user]
    unfiltered = model.recommend(users, k=30, exclude_seen=False)
    assert (unfiltered != PAD).all()


def test_unknown_users_get_popularity(name: str) -> None:
    frame = tiny_frame()
    model = make(name).fit(frame)
    popular = Popularity().fit(frame).recommend([-5], k=10)[0]
    recs = model.recommend([-5, 1000, 0], k=10)
    assert recs[0].tolist() == recs[1].tolist() == popular.tolist()
    counts = frame["item_id"].value_counts()
    assert counts[popular[0]] == counts.max()


def test_same_seed_same_result(name: str) -> None:
    frame = tiny_frame()
    users = np.arange(40)
    first = make(name, seed=3).fit(frame).recommend(users, k=10)
    again = make(name, seed=3).fit(frame).recommend(users, k=10)
    np.testing.assert_array_equal(first, again)


def test_batch_equals_single_and_input_untouched(name: str) -> None:
    frame = tiny_frame()
    before = frame.copy()
    model = make(name).fit(frame)
    pd.testing.assert_frame_equal(frame, before)
    batch = model.recommend([3, 5, 11], k=8)
    singles = np.vstack([model.recommend([user], k=8) for user in (3, 5, 11)])
    np.testing.assert_array_equal(batch, singles)


def test_empty_request_and_k_zero(name: str) -> None:
    model = make(name).fit(tiny_frame())
    assert model.recommend([], k=5).shape == (0, 5)
    assert model.recommend([1, 2], k=0).shape == (2, 0)


def test_unfitted_model_says_so(name: str) -> None:
    with pytest.raises(NotFittedError):
        make(name).recommend([1], k=5)


def test_param_grids_are_small_and_construct(name: str) -> None:
    grid = PEERS[name].param_grid((1000, 2000))
    assert 1 <= len(grid) <= 6
    for params in grid:
        PEERS[name](seed=1, **params)


def test_ease_matches_the_closed_form() -> None:
    """B = I − P·diag(1/diag P), P = (XᵀX + λI)⁻¹, scores = X B (Steck 2019, eq. 8)."""
    frame = tiny_frame()
    lam = 7.0
    model = EASE(lam=lam).fit(frame)
    x = np.zeros((40, 30))
    x[frame["user_id"], frame["item_id"] - 100] = 1.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(30))
    b = np.eye(30) - p / np.diag(p)
    np.testing.assert_allclose(np.diag(b), 0.0, atol=1e-12)
    np.testing.assert_allclose(model._scores(np.arange(40)), x @ b, atol=1e-9)
    best = np.argsort(-np.where(x > 0, -np.inf, x @ b), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(model.recommend(np.arange(40), k=5), best + 100)


def test_ease_by_hand() -> None:
    """Two items always seen together, λ = 1: XᵀX + I = [[3, 2], [2, 3]].

    P = [[3, −2], [−2, 3]] / 5, so B[0, 1] = −P[0, 1] / P[1, 1] = 2/3.
    """
    gram = np.array([[3.0, 2.0], [2.0, 3.0]], order="F")
    np.testing.assert_allclose(ease_weights(gram), [[0.0, 2 / 3], [2 / 3, 0.0]])


def test_ease_float32_ranks_like_float64() -> None:
    frame = tiny_frame()
    wide = EASE(lam=10.0).fit(frame).recommend(np.arange(40), k=5)
    narrow = EASE(lam=10.0, dtype="float32").fit(frame).recommend(np.arange(40), k=5)
    assert (wide == narrow).mean() > 0.95


def test_ease_blockwise_symmetrising_covers_every_block() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 37))
    gram = a.T @ a + 3 * np.eye(37)
    p = np.linalg.inv(gram)
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(ease_weights(np.asfortranarray(gram), block=8), expected)


def test_ease_survives_save_and_load(tmp_path: Path) -> None:
    frame = tiny_frame()
    model = EASE(seed=5, lam=20.0, dtype="float32").fit(frame)
    path = tmp_path / "ease.npz"
    model.save(path)
    loaded = EASE.load(path)
    assert isinstance(loaded, PersistentModel)
    assert (loaded.seed, loaded.lam, loaded.dtype) == (5, 20.0, "float32")
    users = [0, 7, 12, 999]
    for exclude in (True, False):
        np.testing.assert_array_equal(
            loaded.recommend(users, k=12, exclude_seen=exclude),
            model.recommend(users, k=12, exclude_seen=exclude),
        )


def test_ease_load_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, format=np.array("something/9"))
    with pytest.raises(BenchError, match="format"):
        EASE.load(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(BenchError, match="not a saved EASE model"):
        EASE.load(path)


def test_ease_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="lam"):
        EASE(lam=0.0)
    with pytest.raises(ValueError, match="dtype"):
        EASE(dtype="float16")


@pytest.mark.parametrize("cls", [ImplicitALS, ImplicitBPR, LightFMWarp])
def test_missing_library_names_the_extra(
    cls: type[MatrixPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    for module in ("implicit", "implicit.cpu.als", "implicit.cpu.bpr", "lightfm"):
        monkeypatch.setitem(sys.modules, module, None)  # None makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'trustfeed\[bench\]'"):
        cls(seed=1).fit(tiny_frame())

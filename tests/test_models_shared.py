"""One suite every recommender model inherits (STYLE.md: implicit's recommender_base_test).

Each subclass supplies ``make`` (a fresh model) and ``data`` (a training frame);
the suite checks what every model promises: shape and padding, the seen filter,
unknown users, same seed → same result, batch = single, inputs not mutated, and
save → load giving the same recommendations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from trustfeed.bench._peers import EASE, Popularity
from trustfeed.data._world import generate_world
from trustfeed.recommend import PAD, Recommender


def _implicit_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_users, n_items = 60, 80
    groups = rng.integers(0, 4, n_users)
    rows = []
    for u in range(n_users):
        pool = np.flatnonzero(np.arange(n_items) % 4 == groups[u])
        picks = rng.choice(pool, size=rng.integers(3, 12), replace=False)
        rows += [(u * 7 + 1, int(i) * 3 + 100, float(t)) for t, i in enumerate(picks)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


class ModelSuite:
    k = 10

    def make(self, seed: int = 42) -> Any:
        raise NotImplementedError

    def data(self) -> pd.DataFrame:
        return _implicit_frame()

    def fitted(self, seed: int = 42) -> Any:
        return self.make(seed).fit(self.data())

    def users(self) -> np.ndarray:
        return np.unique(self.data()["user_id"].to_numpy())[:20]

    def test_shape_padding_and_known_items(self) -> None:
        model = self.fitted()
        out = model.recommend(self.users(), k=self.k)
        assert out.shape == (len(self.users()), self.k)
        assert out.dtype == np.int64
        catalogue = set(self.data()["item_id"].tolist())
        assert set(out[out != PAD].tolist()) <= catalogue
        for row in out:
            real = row[row != PAD]
            assert len(set(real.tolist())) == len(real)  # no duplicates
            assert (row[len(real) :] == PAD).all()  # padding only at the end

    def test_exclude_seen(self) -> None:
        df = self.data()
        model = self.fitted()
        users = self.users()
        out = model.recommend(users, k=self.k, exclude_seen=True)
        for u, row in zip(users, out, strict=True):
            seen = set(df.loc[df["user_id"] == u, "item_id"].tolist())
            assert not seen & set(row.tolist())

    def test_unknown_users_get_a_feed(self) -> None:
        model = self.fitted()
        out = model.recommend(np.array([-999_999, 10**15]), k=self.k)
        assert out.shape == (2, self.k)
        assert (out[:, 0] != PAD).all()

    def test_same_seed_same_result(self) -> None:
        a = self.fitted(seed=7).recommend(self.users(), k=self.k)
        b = self.fitted(seed=7).recommend(self.users(), k=self.k)
        np.testing.assert_array_equal(a, b)

    def test_batch_equals_single(self) -> None:
        model = self.fitted()
        users = self.users()
        batch = model.recommend(users, k=self.k)
        single = np.vstack([model.recommend(np.array([u]), k=self.k) for u in users])
        np.testing.assert_array_equal(batch, single)

    def test_inputs_not_mutated(self) -> None:
        df = self.data()
        before = df.copy(deep=True)
        model = self.make().fit(df)
        users = self.users()
        users_before = users.copy()
        model.recommend(users, k=self.k)
        pd.testing.assert_frame_equal(df, before)
        np.testing.assert_array_equal(users, users_before)

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        model = self.fitted()
        if not hasattr(model, "save"):
            pytest.skip(f"{type(model).__name__} has no persistent state")
        model.save(tmp_path / "model")
        loaded = type(model).load(tmp_path / "model")
        np.testing.assert_array_equal(
            model.recommend(self.users(), k=self.k), loaded.recommend(self.users(), k=self.k)
        )


class TestRecommenderImplicit(ModelSuite):
    def make(self, seed: int = 42) -> Any:
        return Recommender(seed=seed)


class TestRecommenderWithRanker(ModelSuite):
    """Multi-signal events: the multi-task ranker is trained and used."""

    def make(self, seed: int = 42) -> Any:
        return Recommender(seed=seed, creator_cap=3)

    def data(self) -> pd.DataFrame:
        world = generate_world(n_users=80, n_creators=10, n_items=150, n_events=4000, seed=3)
        return world.interactions

    def test_ranker_is_trained(self) -> None:
        assert self.fitted().ranker is not None


class TestEASE(ModelSuite):
    def make(self, seed: int = 42) -> Any:
        return EASE(seed=seed, lam=50.0)


class TestPopularity(ModelSuite):
    def make(self, seed: int = 42) -> Any:
        return Popularity(seed=seed)

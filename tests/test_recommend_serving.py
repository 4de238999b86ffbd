"""Serving: the candidate path equals the dense one, ``explain``, the non-personalised
feed, and the threading contract (readers beside a writer, a refresher and a blocker).

No test here asserts a time: `benchmarks/bench_serving.py` measures latency.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from trustfeed.data._world import generate_world
from trustfeed.recommend import Recommender, RecommendError, UnknownItemError, _scoring

CONFIGS = {
    "ranker": {},
    "caps and exploration": {"creator_cap": 2, "topic_cap": 4, "explore_share": 0.2},
    "every source blended": {"transition": 0.3, "ann_weight": 0.2, "trending_weight": 0.1},
    "no ranker": {"train_ranker": False},
}


@pytest.fixture(scope="module")
def world():
    return generate_world(n_users=200, n_creators=30, n_items=2_000, n_events=16_000, seed=3)


@pytest.fixture(scope="module")
def fitted(world):
    return Recommender(seed=1).fit(world.interactions, items=world.items)


def _users(world, n: int = 60) -> np.ndarray:
    return np.concatenate([world.users["user_id"].to_numpy()[:n], [10**12]])


def _path(monkeypatch, candidates: bool) -> None:
    monkeypatch.setattr(_scoring, "CANDIDATES_FROM", 0 if candidates else 10**12)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=list(CONFIGS))
def test_candidate_path_gives_the_dense_feed_and_reasons(world, monkeypatch, config) -> None:
    """Scoring one user on S ∪ B (see ``_candidates``) must give what scoring every item
    gives: items, scores and reasons, with blocked items and the seen filter."""
    rec = Recommender(seed=1, **config).fit(world.interactions, items=world.items)
    users = _users(world)
    top = np.unique(rec.recommend(users[:10], k=5))
    rec.set_blocked(top[top >= 0][:10])
    feeds = {}
    for candidates in (False, True):
        _path(monkeypatch, candidates)
        feeds[candidates] = [rec.recommend_with_reasons(int(u), k=20) for u in users]
        single = np.vstack([rec.recommend([u], k=20) for u in users])
        np.testing.assert_array_equal(single, [items for items, _, _ in feeds[candidates]])
    for (items, scores, reasons), (want_items, want_scores, want_reasons) in zip(
        feeds[True], feeds[False], strict=True
    ):
        np.testing.assert_array_equal(items, want_items)
        np.testing.assert_array_equal(scores, want_scores)
        assert reasons == want_reasons


def test_candidate_path_batches_equal_single_users(fitted, world, monkeypatch) -> None:
    _path(monkeypatch, True)
    users = _users(world)
    single = np.vstack([fitted.recommend([u], k=10) for u in users])
    np.testing.assert_array_equal(fitted.recommend(users, k=10), single)


# ---------------------------------------------------------------- explain


@pytest.mark.parametrize("candidates", [False, True])
def test_explain_gives_the_reasons_of_the_feed(fitted, world, monkeypatch, candidates) -> None:
    _path(monkeypatch, candidates)
    for user in _users(world, 8):
        items, _, reasons = fitted.recommend_with_reasons(int(user), k=10)
        for item, why in zip(items, reasons, strict=True):
            if item >= 0:
                assert fitted.explain(int(user), int(item)) == why


def test_explain_refuses_an_unknown_item(fitted, world) -> None:
    user = int(world.users["user_id"].iloc[0])
    with pytest.raises(UnknownItemError) as err:
        fitted.explain(user, 10**15)
    assert isinstance(err.value, RecommendError) and "10" in str(err.value)


def test_explain_without_profiling_reads_no_history(fitted, world) -> None:
    user = int(world.interactions["user_id"].iloc[0])
    items, _, reasons = fitted.recommend_with_reasons(user, k=10)
    personal = {r.source for rs in reasons for r in rs}
    assert "item2item" in personal
    for item in items[items >= 0]:
        why = fitted.explain(user, int(item), personalised=False)
        assert why and {r.source for r in why} <= {"trending", "popular", "fresh"}


# ---------------------------------------------------------------- non-personalised feed


@pytest.mark.parametrize("candidates", [False, True])
def test_popular_is_the_stranger_feed_and_ignores_the_user(
    fitted, world, monkeypatch, candidates
) -> None:
    _path(monkeypatch, candidates)
    items, scores, reasons = fitted.popular(k=10)
    np.testing.assert_array_equal(items, fitted.recommend([10**12], k=10)[0])
    assert (items >= 0).all() and np.all(np.diff(scores) <= 0)
    assert all(rs and {r.source for r in rs} <= {"trending", "popular", "fresh"} for rs in reasons)
    user = int(world.interactions["user_id"].iloc[0])
    opted_out = fitted.recommend_with_reasons(user, k=10, personalised=False)
    np.testing.assert_array_equal(opted_out[0], items)
    assert opted_out[2] == reasons


@pytest.mark.parametrize("candidates", [False, True])
def test_popular_excludes_what_it_is_told_and_blocked_items(
    fitted, monkeypatch, candidates
) -> None:
    _path(monkeypatch, candidates)
    first, _, _ = fitted.popular(k=10)
    second, _, _ = fitted.popular(k=10, exclude=first)
    assert not np.isin(second, first).any() and (second >= 0).all()
    fitted.set_blocked(second[:3])
    try:
        third, _, _ = fitted.popular(k=10, exclude=first)
        assert not np.isin(third, second[:3]).any()
    finally:
        fitted.set_blocked(second[:3], blocked=False)
    with pytest.raises(RecommendError):
        fitted.popular(k=0)


# ---------------------------------------------------------------- threads


def _stream(world, fraction: float = 0.7) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    log = world.interactions.sort_values("timestamp", kind="stable")
    cut = int(len(log) * fraction)
    later = log.iloc[cut:]
    return log.iloc[:cut], [later.iloc[i : i + 50] for i in range(0, len(later), 50)]


class _Threads:
    """Runs the roles of a service on one recommender and collects their failures."""

    def __init__(self, rec: Recommender, world, batches: list[pd.DataFrame]) -> None:
        self.rec, self.world, self.batches = rec, world, batches
        self.errors: list[BaseException] = []
        self.blocked: list[int] = []  # ids whose set_blocked call has returned
        self.writing = threading.Event()
        self.served = 0

    def run(self) -> None:
        roles = [self._writer, self._refresher, self._blocker, self._reader, self._reader]
        threads = [threading.Thread(target=self._guard, args=(role,)) for role in roles]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in threads), "a thread hung: deadlock?"

    def _guard(self, role) -> None:
        try:
            role()
        except BaseException as exc:  # reported by the test, with its traceback
            self.errors.append(exc)
            self.writing.clear()

    def _writer(self) -> None:
        self.writing.set()
        try:
            for batch in self.batches:
                self.rec.partial_fit(batch)
        finally:
            self.writing.clear()

    def _refresher(self) -> None:
        while self.writing.is_set():
            self.rec.refresh(solve_ann=True)

    def _blocker(self) -> None:
        items = self.world.items["item_id"].to_numpy()
        users = self.world.users["user_id"].to_numpy()
        for i, item in enumerate(items[:40]):
            self.rec.set_blocked([int(item)])
            self.blocked.append(int(item))  # only after set_blocked returned
            if i % 10 == 0:
                self.rec.forget_users([int(users[-1 - i])])

    def _reader(self) -> None:
        users = self.world.users["user_id"].to_numpy()
        rng = np.random.default_rng(threading.get_ident() % 2**32)
        while self.writing.is_set() or self.served < 50:
            user = int(rng.choice(users))
            before = set(self.blocked)  # every one of these was blocked before the call
            feed = self.rec.recommend([user], k=10)[0]
            items, _, reasons = self.rec.recommend_with_reasons(user, k=5)
            popular, _, _ = self.rec.popular(k=5)
            served = {int(i) for i in (*feed, *items, *popular) if i >= 0}
            assert not served & before, f"blocked items served: {served & before}"
            assert all(reasons[j] for j in np.flatnonzero(items >= 0))
            if items[0] >= 0:
                self.rec.explain(user, int(items[0]))
            self.served += 1


@pytest.mark.parametrize("candidates", [False, True])
def test_readers_run_beside_a_writer_a_refresher_and_a_blocker(
    world, monkeypatch, candidates
) -> None:
    """The class docstring's contract: no exception, no deadlock, and an item is never
    served by a call that began after ``set_blocked`` returned for it."""
    _path(monkeypatch, candidates)
    early, batches = _stream(world)
    rec = Recommender(seed=2).fit(early, items=world.items)
    roles = _Threads(rec, world, batches)
    roles.run()
    if roles.errors:
        raise roles.errors[0]
    assert roles.served >= 50 and len(roles.blocked) == 40
    users = world.users["user_id"].to_numpy()
    assert not np.isin(rec.recommend(users, k=20), roles.blocked).any()


def test_events_during_a_refresh_are_kept_for_the_next(world) -> None:
    """A refresh solves from a snapshot: counts that arrive meanwhile are not lost."""
    early, batches = _stream(world, 0.5)
    rec = Recommender(seed=2, embedding_dim=0).fit(early, items=world.items)
    done = threading.Event()

    def refresh() -> None:
        rec.refresh()
        done.set()

    worker = threading.Thread(target=refresh)
    worker.start()
    for batch in batches:
        rec.partial_fit(batch)
    worker.join()
    assert done.is_set()
    rec.refresh()
    whole = Recommender(seed=2, embedding_dim=0).fit(early, items=world.items)
    for batch in batches:
        whole.partial_fit(batch)
    whole.refresh()
    np.testing.assert_allclose(rec._gram.toarray(), whole._gram.toarray(), rtol=1e-5)
    users = world.users["user_id"].to_numpy()[:50]
    assert (rec.recommend(users, k=10) >= 0).all()


@pytest.mark.parametrize("candidates", [False, True])
def test_nothing_eligible_gives_padded_feeds(world, monkeypatch, candidates) -> None:
    """Regression: the candidate path once indexed an empty candidate set (allow-list
    mode before anything is allowed)."""
    _path(monkeypatch, candidates)
    rec = Recommender(seed=1, eligible_by_default=False, embedding_dim=0)
    rec.fit(world.interactions.iloc[:3_000], items=world.items)
    users = _users(world, 5)
    assert (rec.recommend(users, k=5) == -1).all()
    items, scores, reasons = rec.recommend_with_reasons(int(users[0]), k=5)
    assert (items == -1).all() and np.isneginf(scores).all() and reasons == [[]] * 5
    assert (rec.popular(k=5)[0] == -1).all()

"""The generated world: deterministic, in the schema, causal in time, calibrated."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from trustfeed.data._schema import EVENTS, ITEM_COLUMNS
from trustfeed.data._world import World, generate_world, random_exposure, split_by_time

IMPRESSION = ["view", "skip"]


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(n_users=600, n_creators=60, n_items=1500, n_events=60_000, seed=7)


def rates(log: pd.DataFrame) -> dict[str, float]:
    imp = log[log["event"].isin(IMPRESSION)]
    ratio = imp["watch_ms"] / imp["duration_ms"]
    counts = log["event"].value_counts()
    n = len(imp)
    return {
        "skip": counts["skip"] / n,
        "long_view": float((imp["watch_ms"] >= np.minimum(18_000, imp["duration_ms"])).mean()),
        "ratio_median": float(ratio.median()),
        "ratio_mean": float(ratio.mean()),
        **{e: counts[e] / n for e in ("like", "share", "comment", "follow", "hate")},
    }


def test_same_seed_same_world_other_seed_other_world() -> None:
    kwargs = {"n_users": 50, "n_creators": 8, "n_items": 120, "n_events": 3000}
    a, b = generate_world(**kwargs, seed=3), generate_world(**kwargs, seed=3)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.users, b.users)
    np.testing.assert_array_equal(a.user_interest, b.user_interest)
    c = generate_world(**kwargs, seed=4)
    assert not a.interactions["item_id"].equals(c.interactions["item_id"])


def test_schema(world: World) -> None:
    log = world.interactions
    assert list(log.columns) == [
        "user_id", "item_id", "timestamp", "event", "watch_ms", "duration_ms"
    ]  # fmt: skip
    assert log["user_id"].dtype == np.int64 and log["item_id"].dtype == np.int64
    assert log["timestamp"].dtype == np.float64
    assert isinstance(log["event"].dtype, pd.CategoricalDtype)
    assert list(log["event"].cat.categories) == list(EVENTS)
    assert log["watch_ms"].dtype == np.float64 and log["duration_ms"].dtype == np.float64
    assert log.notna().all().all()
    assert (log["watch_ms"] >= 0).all() and (log["watch_ms"] <= log["duration_ms"]).all()
    assert isinstance(log.index, pd.RangeIndex)
    assert list(world.items.columns) == list(ITEM_COLUMNS)
    for name, dtype in ITEM_COLUMNS.items():
        assert str(world.items[name].dtype) == dtype, name
    assert set(world.items["topic"]) <= set(world.topics)
    assert list(world.users.columns) == ["user_id", "top_topic", "activity"]
    assert world.user_interest.shape == (len(world.users), len(world.topics))
    np.testing.assert_allclose(world.user_interest.sum(axis=1), 1.0)


def test_the_loader_accepts_the_log_unchanged(world: World) -> None:
    validate = pytest.importorskip("trustfeed.data._validate").validate_interactions
    pd.testing.assert_frame_equal(validate(world.interactions), world.interactions)


def test_counts_time_order_and_one_view_per_impression(world: World) -> None:
    log = world.interactions
    imp = log[log["event"].isin(IMPRESSION)]
    assert len(imp) == 60_000
    assert not imp.duplicated(["user_id", "item_id"]).any()
    assert log["timestamp"].is_monotonic_increasing
    assert log["timestamp"].min() >= world.start and log["timestamp"].max() < world.end + 3600
    # every action row follows the impression of the same (user, item)
    first = imp.set_index(["user_id", "item_id"])["timestamp"]
    actions = log[~log["event"].isin(IMPRESSION)]
    shown = first.reindex(pd.MultiIndex.from_frame(actions[["user_id", "item_id"]]))
    assert shown.notna().all() and (actions["timestamp"].to_numpy() > shown.to_numpy()).all()


def test_items_are_only_seen_after_they_are_published(world: World) -> None:
    published = world.items.set_index("item_id")["published_at"]
    seen = world.interactions
    assert (seen["timestamp"].to_numpy() >= published[seen["item_id"]].to_numpy()).all()
    # cold items keep arriving: uploads during the period, many of them seen
    new = world.items["published_at"] >= world.start
    assert 0.6 < new.mean() < 0.9
    assert seen["item_id"].isin(world.items["item_id"][new]).mean() > 0.3
    assert world.items["published_at"].is_monotonic_increasing


def test_durations_are_short_video_like(world: World) -> None:
    duration_s = world.items["duration_ms"] / 1000
    assert 50 < duration_s.median() < 120  # KuaiRand-1K: 81 s
    assert duration_s.min() >= 5 and duration_s.max() <= 600


def test_random_exposure_matches_kuairand_bands(world: World) -> None:
    got = rates(random_exposure(world, 200_000, seed=1))
    bands = {
        "skip": (0.52, 0.70),
        "long_view": (0.06, 0.12),
        "ratio_median": (0.02, 0.05),
        "ratio_mean": (0.09, 0.15),
        "like": (0.0035, 0.0085),
        "share": (0.0003, 0.0012),
        "comment": (0.0001, 0.0006),
        "follow": (0.00005, 0.0004),
        "hate": (0.0004, 0.0013),
    }
    for name, (low, high) in bands.items():
        assert low <= got[name] <= high, (name, got[name])


def test_personalised_log_engages_more_than_random(world: World) -> None:
    feed, rnd = rates(world.interactions), rates(random_exposure(world, 200_000, seed=2))
    assert 0.35 <= feed["skip"] <= 0.52 and feed["skip"] < rnd["skip"] - 0.08
    assert 0.008 <= feed["like"] <= 0.018 and 1.5 <= feed["like"] / rnd["like"] <= 3.0
    assert 0.13 <= feed["long_view"] <= 0.23
    assert feed["hate"] < rnd["hate"]


def test_users_engage_more_with_their_top_topics(world: World) -> None:
    log = world.interactions
    imp = log[log["event"].isin(IMPRESSION)]
    topic = world.items["topic"].to_numpy()[imp["item_id"].to_numpy()]
    top = world.users["top_topic"].to_numpy()[imp["user_id"].to_numpy()]
    on_top = topic == top
    ratio = (imp["watch_ms"] / imp["duration_ms"]).to_numpy()
    skip = (imp["event"] == "skip").to_numpy()
    assert 2 / len(world.topics) < on_top.mean() < 0.5  # leans to interests, not only
    assert ratio[on_top].mean() > 1.5 * ratio[~on_top].mean()
    assert skip[on_top].mean() < skip[~on_top].mean() - 0.15
    likes = log[log["event"] == "like"]
    liked_top = (
        world.items["topic"].to_numpy()[likes["item_id"].to_numpy()]
        == (world.users["top_topic"].to_numpy()[likes["user_id"].to_numpy()])
    )
    assert liked_top.mean() > on_top.mean() + 0.1


def test_activity_is_heavy_tailed(world: World) -> None:
    per_user = world.interactions.groupby("user_id").size()
    assert per_user.mean() > 1.3 * per_user.median()
    assert per_user.max() > 4 * per_user.median()


def test_split_by_time() -> None:
    log = generate_world(n_users=40, n_creators=5, n_items=100, n_events=2000).interactions
    before, after = split_by_time(log, 0.7)
    assert len(before) + len(after) == len(log)
    assert abs(len(before) - 0.7 * len(log)) <= 2
    assert before["timestamp"].max() < after["timestamp"].min()
    pd.testing.assert_frame_equal(pd.concat([before, after], ignore_index=True), log)
    assert len(split_by_time(log, 0.0)[0]) == 0 and len(split_by_time(log, 1.0)[1]) == 0
    shuffled = log.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(split_by_time(shuffled, 0.7)[0], before)
    with pytest.raises(ValueError, match="fraction"):
        split_by_time(log, 1.5)


@pytest.mark.parametrize(
    "bad", [{"n_users": 0}, {"n_items": -5}, {"n_events": -1}, {"days": 0}, {"n_topics": 1.5}]
)
def test_bad_sizes_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        generate_world(**bad)  # type: ignore[arg-type]


def test_tiny_worlds_work() -> None:
    w = generate_world(n_users=1, n_creators=1, n_items=1, n_events=5, n_topics=1, days=1)
    assert len(w.interactions[w.interactions["event"].isin(IMPRESSION)]) == 1
    assert len(generate_world(n_events=0, n_users=5, n_items=5).interactions) == 0


def test_default_world_is_fast() -> None:
    began = time.perf_counter()
    w = generate_world()
    assert len(w.interactions) >= 200_000
    assert time.perf_counter() - began < 5.0

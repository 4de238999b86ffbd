"""CollisionlessTable: one row per live id, admission, expiry, persistence."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustfeed.recommend import _table
from trustfeed.recommend._base import RecommendError
from trustfeed.recommend._table import (
    FORMAT_VERSION,
    CollisionlessTable,
    TableFormatError,
    TableInputError,
)

I64 = np.iinfo(np.int64)
EXTREMES = [I64.min, I64.max, 0, -1, 1, I64.min + 1, I64.max - 1]


class Model:
    """The plain reference: a dict from id to [count, last_seen]."""

    def __init__(self, admit_after: int, expire_after: float | None) -> None:
        self.admit_after, self.expire_after = admit_after, expire_after
        self.seen: dict[int, list[float]] = {}

    def observe(self, ids: list[int], t: float) -> list[bool]:
        admitted = []
        for i in ids:
            entry = self.seen.setdefault(i, [0, t])
            entry[0] += 1
            entry[1] = max(entry[1], t)
            admitted.append(entry[0] >= self.admit_after)
        return admitted

    def expire(self, now: float) -> set[int]:
        if self.expire_after is None:
            return set()
        gone = {i for i, (_, last) in self.seen.items() if now - last > self.expire_after}
        for i in gone:
            del self.seen[i]
        return {i for i in gone}

    def admitted(self) -> dict[int, list[float]]:
        return {i: e for i, e in self.seen.items() if e[0] >= self.admit_after}


def check_against(table: CollisionlessTable, model: Model) -> None:
    admitted = model.admitted()
    ids = np.array(sorted(model.seen), np.int64)
    rows = table.rows(ids)
    live = {i: int(r) for i, r in zip(ids.tolist(), rows.tolist(), strict=True) if r >= 0}
    assert set(live) == set(admitted)
    assert len(set(live.values())) == len(live), "two live ids share a row"
    assert len(table) == len(live)
    assert sorted(table.live_rows().tolist()) == sorted(live.values())
    assert sorted(table.live_ids().tolist()) == sorted(live)
    if live:
        r = np.array(list(live.values()))
        assert table.ids_at(r).tolist() == list(live)
        assert table.counts[r].tolist() == [admitted[i][0] for i in live]
        assert table.last_seen[r].tolist() == [admitted[i][1] for i in live]
    p_ids, p_counts, p_last = table.pending()
    pending = {i: e for i, e in model.seen.items() if i not in admitted}
    assert p_ids.tolist() == sorted(pending)
    assert p_counts.tolist() == [pending[i][0] for i in sorted(pending)]
    assert p_last.tolist() == [pending[i][1] for i in sorted(pending)]
    assert table.observed_counts(ids).tolist() == [model.seen[i][0] for i in ids.tolist()]


# Small id pools force repeats, readmission and row reuse; extremes are always in play.
id_lists = st.lists(
    st.one_of(st.integers(-20, 20), st.sampled_from(EXTREMES), st.integers(I64.min, I64.max)),
    max_size=30,
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("observe"), id_lists, st.integers(0, 5)),
        st.tuples(st.just("expire"), st.just([]), st.integers(0, 5)),
    ),
    max_size=25,
)


def replay(table: CollisionlessTable, model: Model, history: list, check: bool = True) -> None:
    clock = 0.0
    for op, ids, dt in history:
        clock += dt
        if op == "observe":
            expected = model.observe(ids, clock)
            got = table.observe(np.array(ids, np.int64), clock)
            assert (got >= 0).tolist() == expected
            for i, r in zip(ids, got.tolist(), strict=True):
                if r >= 0:
                    assert r == table.rows([i])[0]
        else:
            before = {i: int(table.rows([i])[0]) for i in model.admitted()}
            gone = model.expire(clock)
            rows, freed = table.expire(clock)
            assert sorted(freed.tolist()) == sorted(i for i in gone if i in before)
            assert rows.tolist() == sorted(rows.tolist())
            assert {int(r) for r in rows} == {before[i] for i in freed.tolist()}
            assert (table.rows(freed) == -1).all()
        if check:
            check_against(table, model)


@settings(max_examples=80, deadline=None)
@given(history=ops, admit_after=st.integers(1, 3), expire_after=st.sampled_from([None, 0, 3.0]))
def test_random_histories_match_reference(history, admit_after, expire_after):
    table = CollisionlessTable(dim=3, admit_after=admit_after, expire_after=expire_after)
    replay(table, Model(admit_after, expire_after), history)


@settings(max_examples=80, deadline=None)
@given(history=ops, admit_after=st.integers(1, 2))
def test_random_histories_in_tiny_tables(history, admit_after):
    # Start with 4 slots and 1 row: long probe chains that wrap around, deletions
    # inside them, and growth in the middle of a batch.
    with patch.object(_table, "_MIN_SLOTS", 4), patch.object(_table, "_MIN_ROWS", 1):
        table = CollisionlessTable(dim=1, admit_after=admit_after, expire_after=2.0)
        replay(table, Model(admit_after, 2.0), history)


@settings(max_examples=30, deadline=None)
@given(history=ops, admit_after=st.integers(1, 3), expire_after=st.sampled_from([None, 2.0]))
def test_save_load_round_trip(history, admit_after, expire_after):
    table = CollisionlessTable(dim=2, admit_after=admit_after, expire_after=expire_after, seed=5)
    model = Model(admit_after, expire_after)
    replay(table, model, history, check=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.npz"
        table.save(path)
        loaded = CollisionlessTable.load(path)
    check_against(loaded, model)
    ids = np.array(sorted(model.seen) + EXTREMES, np.int64)
    assert loaded.rows(ids).tolist() == table.rows(ids).tolist()
    np.testing.assert_array_equal(loaded.vectors, table.vectors)
    np.testing.assert_array_equal(loaded.counts, table.counts)
    np.testing.assert_array_equal(loaded.last_seen, table.last_seen)
    # Both continue identically: same free rows reused, same generator stream.
    more = np.array([*EXTREMES, 99, 100, 101] * admit_after, np.int64)
    assert loaded.observe(more, 50.0).tolist() == table.observe(more, 50.0).tolist()
    np.testing.assert_array_equal(loaded.vectors, table.vectors)
    assert loaded.expire(1e6)[0].tolist() == table.expire(1e6)[0].tolist()


def test_extreme_ids_each_get_their_own_row():
    table = CollisionlessTable(dim=4)
    rows = table.observe(EXTREMES, 1.0)
    assert len(set(rows.tolist())) == len(EXTREMES)
    assert table.ids_at(rows).tolist() == EXTREMES
    assert all(i in table for i in EXTREMES)
    assert 2 not in table and "x" not in table and True not in table and 2**64 not in table


def test_ids_sharing_low_bits_and_large_batches_match_a_dict():
    # Keys equal modulo every power-of-two table size: all probing, no confusion.
    shifted = np.arange(5000, dtype=np.int64) << 40
    rng = np.random.default_rng(3)
    ids = np.concatenate([shifted, -shifted, rng.integers(I64.min, I64.max, 20_000)])
    ids = np.concatenate([ids, rng.choice(ids, 20_000)])  # repeats inside the batch
    table = CollisionlessTable(dim=0)
    rows = table.observe(ids, 0.0)
    first: dict[int, int] = {}
    for i, r in zip(ids.tolist(), rows.tolist(), strict=True):
        assert first.setdefault(i, r) == r
    assert len(set(first.values())) == len(first) == len(table)
    assert table.rows(ids).tolist() == rows.tolist()
    uniq, counts = np.unique(ids, return_counts=True)
    np.testing.assert_array_equal(table.observed_counts(uniq), counts)


def test_expiry_frees_rows_for_reuse_with_fresh_vectors():
    table = CollisionlessTable(dim=3, expire_after=10.0, init_scale=0.01)
    table.observe([1, 2, 3], 0.0)
    table.observe([2], 5.0)
    table.vectors[:] = 99.0  # the owner trains its rows
    rows, ids = table.expire(now=10.5)
    assert (rows.tolist(), ids.tolist()) == ([0, 2], [1, 3])
    assert table.expire(now=10.5)[0].size == 0
    new = table.observe([7, 8, 9], 11.0)
    assert new.tolist() == [0, 2, 3]  # freed rows first, lowest first
    assert np.abs(table.vectors[[0, 2, 3]]).max() < 1.0
    assert (table.vectors[1] == 99.0).all()
    assert table.counts[0] == 1 and table.rows([1, 3]).tolist() == [-1, -1]
    # Exactly expire_after old is kept; more than that is dropped.
    assert table.expire(now=15.0)[1].tolist() == []
    assert table.expire(now=15.0001)[1].tolist() == [2]


def test_pending_ids_expire_too():
    table = CollisionlessTable(dim=1, admit_after=2, expire_after=1.0)
    table.observe([5], 0.0)
    table.expire(2.0)
    assert table.observe([5], 2.0).tolist() == [-1]  # the count started again
    assert table.pending()[1].tolist() == [1]


def test_no_expiry_when_expire_after_is_none():
    table = CollisionlessTable(dim=1)
    table.observe([1], 0.0)
    rows, ids = table.expire(1e12)
    assert rows.dtype == ids.dtype == np.int64 and rows.size == ids.size == 0
    assert 1 in table


def test_same_seed_same_vectors_and_different_seed_differs():
    def run(seed: int) -> CollisionlessTable:
        t = CollisionlessTable(dim=8, expire_after=1.0, seed=seed)
        t.observe(np.arange(100), 0.0)
        t.expire(5.0)
        t.observe(np.arange(50, 300), 6.0)
        return t

    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert a.rows(np.arange(300)).tolist() == b.rows(np.arange(300)).tolist()
    assert not np.array_equal(a.vectors, c.vectors)
    assert a.vectors.dtype == np.float32 and 0 < a.vectors.std() < 0.05


def test_inputs_are_not_mutated():
    ids = np.array([3, 1, 3, I64.min], np.int64)
    ts = np.array([4.0, 1.0, 2.0, 3.0])
    ids_copy, ts_copy = ids.copy(), ts.copy()
    ids.flags.writeable = ts.flags.writeable = False
    table = CollisionlessTable(dim=2, expire_after=1.0)
    table.observe(ids, ts)
    table.rows(ids)
    table.expire(10.0)
    np.testing.assert_array_equal(ids, ids_copy)
    np.testing.assert_array_equal(ts, ts_copy)


def test_accepts_lists_scalars_and_other_integer_dtypes():
    table = CollisionlessTable(dim=1)
    assert table.observe(np.array([1, 2], np.int32), [1, 2]).tolist() == [0, 1]
    assert table.rows(np.array([2], np.uint64)).tolist() == [1]
    assert table.rows([]).tolist() == [] and table.observe([], []).tolist() == []
    assert table.last_seen.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError):
        table.counts[0] = 5


@pytest.mark.parametrize(
    ("ids", "ts"),
    [
        ([1.0, 2.0], 0.0),
        ([True], 0.0),
        (["a"], 0.0),
        ([[1, 2]], 0.0),
        (5, 0.0),
        ([2**64], 0.0),
        (np.array([2**63], np.uint64), 0.0),
        ([1, 2], [0.0]),
        ([1, 2], [0.0, np.nan]),
        ([1], [np.inf]),
        ([1], ["now"]),
    ],
)
def test_bad_observations_are_rejected(ids, ts):
    table = CollisionlessTable(dim=1)
    with pytest.raises(TableInputError) as info:
        table.observe(ids, ts)
    assert isinstance(info.value, RecommendError) and isinstance(info.value, ValueError)
    assert len(table) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dim": -1},
        {"dim": 2.5},
        {"dim": 1, "admit_after": 0},
        {"dim": 1, "admit_after": -3},
        {"dim": 1, "expire_after": -1.0},
        {"dim": 1, "expire_after": float("nan")},
        {"dim": 1, "init_scale": -0.1},
        {"dim": 1, "seed": -1},
    ],
)
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(TableInputError):
        CollisionlessTable(**kwargs)


def test_bad_lookups_are_rejected():
    table = CollisionlessTable(dim=1, expire_after=1.0)
    table.observe([10, 11], 0.0)
    table.observe([11], 5.0)
    table.expire(5.0)
    for rows in ([0], [2], [-1], [0.0]):
        with pytest.raises(TableInputError):
            table.ids_at(rows)
    with pytest.raises(TableInputError):
        table.expire(float("nan"))


def _rewrite_header(path: Path, change) -> None:
    with np.load(path, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    header = json.loads(str(data["header"]))
    change(header)
    data["header"] = np.array(json.dumps(header))
    with open(path, "wb") as fh:
        np.savez(fh, **data)


def test_unknown_format_version_is_a_clear_error(tmp_path):
    path = tmp_path / "t.npz"
    table = CollisionlessTable(dim=2)
    table.observe([1], 0.0)
    table.save(path)
    _rewrite_header(path, lambda h: h.update(version=FORMAT_VERSION + 1))
    with pytest.raises(TableFormatError, match="format version 2"):
        CollisionlessTable.load(path)


def test_files_that_are_not_tables_are_rejected(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    text = tmp_path / "text.npz"
    text.write_text("hello")
    for path in (other, text, tmp_path / "missing.npz"):
        with pytest.raises(TableFormatError):
            CollisionlessTable.load(path)
    damaged = tmp_path / "damaged.npz"
    table = CollisionlessTable(dim=2)
    table.observe([1, 2], 0.0)
    table.save(damaged)
    _rewrite_header(damaged, lambda h: h.update(n_rows=5))
    with pytest.raises(TableFormatError, match="damaged"):
        CollisionlessTable.load(damaged)


def test_save_writes_exactly_the_given_path(tmp_path):
    path = tmp_path / "state"
    CollisionlessTable(dim=0).save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["state"]
    assert len(CollisionlessTable.load(path)) == 0


def test_late_events_never_make_an_id_look_older():
    table = CollisionlessTable(dim=1, admit_after=2, expire_after=4.5)
    table.observe([1, 2], [5.0, 5.0])
    table.observe([1, 2, 2], [3.0, 3.0, 1.0])  # 2 is admitted by a late event
    table.observe([3, 3], [9.0, 2.0])
    assert table.last_seen.tolist() == [5.0, 5.0, 9.0]
    assert table.expire(9.5)[1].tolist() == []


def test_expiring_half_of_a_large_table_keeps_the_rest_intact():
    rng = np.random.default_rng(7)
    ids = np.unique(rng.integers(I64.min, I64.max, 30_000))
    ts = rng.uniform(0.0, 100.0, len(ids))
    table = CollisionlessTable(dim=0, expire_after=50.0)
    rows = table.observe(ids, ts)
    freed_rows, freed_ids = table.expire(100.0)
    old = ts < 50.0
    assert sorted(freed_ids.tolist()) == sorted(ids[old].tolist())
    assert sorted(freed_rows.tolist()) == sorted(rows[old].tolist())
    np.testing.assert_array_equal(table.rows(ids), np.where(old, -1, rows))
    again = table.observe(ids, 100.0)
    assert len(set(again.tolist())) == len(ids) and table.n_rows == len(ids)


def test_remove_forgets_admitted_and_pending_ids_and_reuses_their_rows() -> None:
    table = CollisionlessTable(0, admit_after=2)
    table.observe([1, 1, 2, 2, 3], [0.0, 1.0, 2.0, 3.0, 4.0])  # 1 and 2 admitted, 3 pending
    rows, ids = table.remove([2, 3, 99])
    assert ids.tolist() == [2] and rows.tolist() == [1]
    assert 2 not in table and 3 not in table and 1 in table
    assert table.observed_counts([2, 3]).tolist() == [0, 0]
    table.observe([4, 4], [5.0, 6.0])
    assert table.rows([4]).tolist() == [1]  # the freed row is reused

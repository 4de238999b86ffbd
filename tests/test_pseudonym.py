"""The training stream: only pseudonyms and allow-listed, domestic fields leave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustfeed.custody import KeyedHasher
from trustfeed.custody.pseudonym import (
    ALLOWED_COLUMNS,
    PseudonymError,
    PseudonymStream,
    ResidencyError,
    pseudonymise_events,
)

HASHER = KeyedHasher({1: b"a" * 32, 2: b"b" * 32}, current=1)
OUT_COLUMNS = {"user_id", "item_id", *ALLOWED_COLUMNS}


def events(**extra: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": ["user-alice", "user-bob", "user-alice"],
            "item_id": [1001, 1002, 1003],
            "timestamp": [1.0, 2.0, 3.0],
            "event": ["view", "like", "skip"],
            "watch_ms": [1500.0, 300.0, 10.0],
        }
    )
    for name, values in extra.items():
        frame[name] = values
    return frame


def test_ids_become_int64_pseudonyms_and_allowed_fields_pass() -> None:
    batch = pseudonymise_events(events(), HASHER, domestic="US", residency="US")
    out = batch.frame
    assert list(out.columns) == ["user_id", "item_id", "timestamp", "event", "watch_ms"]
    assert out["user_id"].dtype == np.int64 and out["item_id"].dtype == np.int64
    assert (out["user_id"] >= 0).all() and (out["item_id"] >= 0).all()
    assert out["user_id"].iloc[0] == out["user_id"].iloc[2] != out["user_id"].iloc[1]
    assert out["event"].tolist() == ["view", "like", "skip"]
    assert batch.key_version == 1 and batch.manifest()["pseudonym_key_version"] == 1


def test_the_input_index_never_leaves_and_dtypes_follow_the_schema() -> None:
    frame = events().set_index(pd.Index(["user-alice", "user-bob", "user-alice"], name="who"))
    out = pseudonymise_events(frame, HASHER, domestic="US", residency="US").frame
    assert isinstance(out.index, pd.RangeIndex) and "user-alice" not in out.to_csv()
    assert isinstance(out["event"].dtype, pd.CategoricalDtype)
    assert out["timestamp"].dtype == np.float64 and out["watch_ms"].dtype == np.float64


def test_restricted_and_unknown_columns_never_pass() -> None:
    restricted = {
        "precise_location": ["52.52,13.40"] * 3,
        "search_query": ["how to leave the country"] * 3,
        "message_text": ["meet me at 8"] * 3,
        "email": ["alice@example.org"] * 3,
        "phone": ["+1 555 0100"] * 3,
        "residency": ["US"] * 3,
        "device_fingerprint": ["abc123"] * 3,
    }
    batch = pseudonymise_events(events(**restricted), HASHER, domestic="US")
    assert set(batch.frame.columns) <= OUT_COLUMNS
    assert set(batch.dropped_columns) == set(restricted)
    text = batch.frame.to_csv()
    for values in restricted.values():
        assert str(values[0]) not in text


# "residency" is an input the stream reads (and refuses when non-domestic), not an extra.
_column_names = st.text(min_size=1, max_size=20).filter(
    lambda n: n not in OUT_COLUMNS and n != "residency"
)
_values = st.one_of(
    st.text(min_size=1, max_size=30).map(lambda t: "SECRET-" + t),
    st.integers(min_value=10**12, max_value=10**15).map(lambda i: f"SECRET-{i}"),
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_column_names, st.lists(_values, min_size=3, max_size=3), max_size=6))
def test_no_extra_column_or_value_ever_leaves(extra: dict[str, list[str]]) -> None:
    frame = events(**extra)
    before = frame.copy()
    batch = pseudonymise_events(frame, HASHER, domestic="US", residency="US")
    assert set(batch.frame.columns) <= OUT_COLUMNS
    assert "SECRET-" not in batch.frame.to_csv()
    pd.testing.assert_frame_equal(frame, before)  # the input is not mutated


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=4, max_size=12).map(lambda t: "uid:" + t), min_size=1))
def test_output_contains_no_raw_id_string(raw_ids: list[str]) -> None:
    frame = pd.DataFrame(
        {"user_id": raw_ids, "item_id": raw_ids, "timestamp": np.arange(len(raw_ids), dtype=float)}
    )
    out = pseudonymise_events(frame, HASHER, domestic="US", residency="US").frame
    text = out.to_csv()
    assert "uid:" not in text
    assert out["user_id"].dtype == np.int64


def test_pseudonyms_are_stable_per_version_and_differ_across_versions() -> None:
    v1 = pseudonymise_events(events(), HASHER, domestic="US", residency="US").frame
    again = pseudonymise_events(events(), HASHER, domestic="US", residency="US").frame
    v2 = pseudonymise_events(events(), HASHER, domestic="US", residency="US", version=2).frame
    pd.testing.assert_frame_equal(v1, again)
    assert set(v1["user_id"]).isdisjoint(set(v2["user_id"]))
    assert set(v1["item_id"]).isdisjoint(set(v2["item_id"]))
    # The same key under another hasher (after rotation) gives the same pseudonyms.
    only_v1 = KeyedHasher({1: b"a" * 32}, current=1)
    pd.testing.assert_frame_equal(
        v1, pseudonymise_events(events(), only_v1, domestic="US", residency="US").frame
    )


def test_integer_ids_are_not_passed_through_and_users_differ_from_items() -> None:
    frame = pd.DataFrame({"user_id": [7, 8], "item_id": [7, 8], "timestamp": [0.0, 1.0]})
    out = pseudonymise_events(frame, HASHER, domestic="US", residency="US").frame
    assert not set(out["user_id"]) & {7, 8}
    assert set(out["user_id"]).isdisjoint(set(out["item_id"]))


def test_the_custodian_can_compute_a_users_pseudonym_for_erasure() -> None:
    stream = PseudonymStream(HASHER, domestic="US")
    out = stream.events(events(), residency="US").frame
    assert out["user_id"].iloc[0] == stream.user("user-alice")
    assert out["item_id"].iloc[0] == stream.item(1001) == stream.item(np.int64(1001))


def test_batches_equal_the_whole() -> None:
    stream = PseudonymStream(HASHER, domestic="US")
    frame = events()
    whole = stream.events(frame, residency="US").frame
    parts = [stream.events(frame.iloc[i : i + 1], residency="US").frame for i in range(3)]
    pd.testing.assert_frame_equal(whole, pd.concat(parts, ignore_index=True))


@pytest.mark.parametrize(
    ("frame", "partition", "message"),
    [
        (events(residency=["US", "CN", "US"]), None, "1 of 3 events are not resident in US"),
        (events(residency=["US", None, "US"]), None, "not resident in US"),
        (events(residency=["US", "CN", "US"]), "US", "not resident"),  # the column wins
        (events(), "DE", "partition residency 'DE' is not 'US'"),
        (events(), None, "residency unknown"),
    ],
)
def test_non_domestic_or_unknown_residency_is_refused(
    frame: pd.DataFrame, partition: str | None, message: str
) -> None:
    with pytest.raises(ResidencyError, match=message):
        pseudonymise_events(frame, HASHER, domestic="US", residency=partition)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (events(event=["view", "call me on 555 0100", "like"]), "not schema events"),
        (events(watch_ms=["1", "my secret", "2"]), "'watch_ms' must be numeric"),
        (events().drop(columns="item_id"), "no 'item_id'"),
        (events().drop(columns="timestamp"), "no 'timestamp'"),
        (events(user_id=["a", None, "b"]), "missing user id"),
        (events(user_id=[1.5, 2.5, 3.5]), "integers or strings"),
    ],
)
def test_bad_events_get_clear_errors_that_do_not_echo_values(
    frame: pd.DataFrame, message: str
) -> None:
    with pytest.raises(PseudonymError, match=message) as info:
        pseudonymise_events(frame, HASHER, domestic="US", residency="US")
    assert "555" not in str(info.value) and "secret" not in str(info.value)


def test_a_pseudonym_collision_refuses_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PseudonymStream, "_pseudonym", lambda self, domain, raw: 1)
    with pytest.raises(PseudonymError, match="share a pseudonym"):
        pseudonymise_events(events(), HASHER, domestic="US", residency="US")


def test_a_missing_key_version_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="no key version 9"):
        PseudonymStream(HASHER, domestic="US", version=9)

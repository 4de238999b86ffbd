"""The event log (trustfeed.stream): one shared suite over both backends.

Every test that takes ``log_url`` / ``log`` / ``new_log`` runs on the local log
(a directory under tmp_path) and on NATS JetStream at 127.0.0.1:4222 (a stream
of its own, deleted afterwards; skipped with the reason when nothing listens).
Local-only tests at the end cover the on-disk format: torn tails, rollover, the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustfeed.stream import (
    MAX_KEY_LENGTH,
    MAX_PAYLOAD_BYTES,
    MAX_READ_LIMIT,
    Ack,
    CorruptLogError,
    EventLog,
    InvalidInputError,
    LocalLog,
    LogClosedError,
    LogLockedError,
    Record,
    StreamUnavailableError,
    open_log,
)

NATS_HOST, NATS_PORT = "127.0.0.1", 4222


def _nats_missing() -> str | None:
    """None when something listens on the NATS port, else why not (the skip message)."""
    try:
        socket.create_connection((NATS_HOST, NATS_PORT), timeout=1).close()
    except OSError as exc:
        return f"NATS JetStream at {NATS_HOST}:{NATS_PORT} not reachable: {exc}"
    return None


def _drop_nats_stream(name: str) -> None:
    """Delete a test stream and its positions bucket (both may be absent)."""
    import nats
    import nats.js.errors

    async def drop() -> None:
        nc = await nats.connect(f"nats://{NATS_HOST}:{NATS_PORT}")
        js = nc.jetstream()
        for stream in (name, f"KV_{name}-positions"):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
        await nc.close()

    asyncio.run(drop())


@pytest.fixture(params=["local", "nats"])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of URLs of fresh, empty logs on one backend; NATS streams dropped after."""
    made: list[str] = []

    def make() -> str:
        name = f"tftest-{uuid.uuid4().hex[:12]}"
        made.append(name)
        if request.param == "local":
            return (tmp_path / name).as_uri()
        return f"nats://{NATS_HOST}:{NATS_PORT}/{name}"

    if request.param == "nats" and (why := _nats_missing()):
        pytest.skip(why)
    yield make
    if request.param == "nats":
        for name in made:
            _drop_nats_stream(name)


@pytest.fixture
def log_url(new_url: Callable[[], str]) -> str:
    return new_url()


@pytest.fixture
def log(log_url: str) -> Iterator[EventLog]:
    with open_log(log_url) as opened:
        yield opened


def _events(n: int, prefix: str = "e") -> list[tuple[str, bytes]]:
    return [(f"{prefix}-{i}", f"payload {i}".encode()) for i in range(n)]


def _read_all(log: EventLog, page: int = 1000) -> list[Record]:
    records: list[Record] = []
    while batch := log.read(records[-1].offset if records else 0, page):
        records.extend(batch)
    return records


# -- the shared suite --


def test_offsets_start_at_one_and_follow_batch_order(log: EventLog) -> None:
    assert log.last_offset() == 0
    assert log.append(_events(3)) == [Ack(1, False), Ack(2, False), Ack(3, False)]
    assert log.append([("next", b"x")]) == [Ack(4, False)]
    assert [(r.offset, r.key) for r in _read_all(log)] == [
        (1, "e-0"),
        (2, "e-1"),
        (3, "e-2"),
        (4, "next"),
    ]
    assert log.read(0, 1) == [Record(1, "e-0", b"payload 0")]
    assert log.last_offset() == 4


def test_empty_batch_stores_nothing(log: EventLog) -> None:
    assert log.append([]) == []
    assert log.last_offset() == 0
    assert log.read(0, 10) == []


def test_read_pages_through_the_log(log: EventLog) -> None:
    events = _events(50)
    log.append(events)
    pages, after = [], 0
    while page := log.read(after, 7):
        assert len(page) <= 7
        pages.append(page)
        after = page[-1].offset
    assert [len(p) for p in pages] == [7] * 7 + [1]
    assert [(r.key, r.payload) for p in pages for r in p] == events
    assert log.read(49, 10) == [Record(50, "e-49", b"payload 49")]
    assert log.read(50, 10) == []
    assert log.read(1000, 10) == []


def test_repeated_key_acks_the_original_and_stores_nothing(log: EventLog) -> None:
    log.append([("a", b"first"), ("b", b"b")])
    acks = log.append([("c", b"c"), ("a", b"again"), ("c", b"again"), ("d", b"d")])
    assert acks == [Ack(3, False), Ack(1, True), Ack(3, True), Ack(4, False)]
    assert [(r.key, r.payload) for r in _read_all(log)] == [
        ("a", b"first"),
        ("b", b"b"),
        ("c", b"c"),
        ("d", b"d"),
    ]


def test_events_and_keys_survive_reopen(log: EventLog, log_url: str) -> None:
    log.append(_events(20))
    log.close()
    with open_log(log_url) as again:
        assert again.last_offset() == 20
        assert [(r.key, r.payload) for r in _read_all(again)] == _events(20)
        # A client retrying after the restart gets its original offsets back.
        assert again.append(_events(3)) == [Ack(1, True), Ack(2, True), Ack(3, True)]
        assert again.append([("new", b"n")]) == [Ack(21, False)]
    with open_log(log_url) as third:
        assert third.read(20, 5) == [Record(21, "new", b"n")]


def test_consumer_positions_are_durable_and_separate(log: EventLog, log_url: str) -> None:
    assert log.position("trainer") == 0
    log.append(_events(5))
    log.commit("trainer", 3)
    log.commit("vault-writer", 5)
    log.commit("trainer", 4)
    assert (log.position("trainer"), log.position("vault-writer")) == (4, 5)
    log.close()
    with open_log(log_url) as again:
        assert (again.position("trainer"), again.position("vault-writer")) == (4, 5)
        again.commit("trainer", 0)  # rewinding (a replay) is allowed
        assert again.position("trainer") == 0


@pytest.mark.parametrize("offset", [-1, 6, True, "3", 2.0])
def test_commit_refuses_offsets_outside_the_log(log: EventLog, offset: object) -> None:
    log.append(_events(5))
    with pytest.raises(InvalidInputError, match="commit offset"):
        log.commit("trainer", offset)  # type: ignore[arg-type]
    assert log.position("trainer") == 0


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "../escape", "a.b", None])
def test_consumer_names_are_checked(log: EventLog, name: object) -> None:
    with pytest.raises(InvalidInputError, match="consumer name"):
        log.position(name)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="consumer name"):
        log.commit(name, 0)  # type: ignore[arg-type]


BAD_EVENTS = {
    "empty key": ("", b"x"),
    "long key": ("k" * (MAX_KEY_LENGTH + 1), b"x"),
    "key with space": ("a b", b"x"),
    "key with newline": ("a\r\nNats-Msg-Id: b", b"x"),
    "non-ascii key": ("clé", b"x"),
    "key not str": (7, b"x"),
    "empty payload": ("k", b""),
    "oversized payload": ("k", b"x" * (MAX_PAYLOAD_BYTES + 1)),
    "str payload": ("k", "text"),
    "not a pair": ("k", b"x", b"y"),
    "not a tuple": ["k", b"x"],
}


@pytest.mark.parametrize("bad", list(BAD_EVENTS.values()), ids=list(BAD_EVENTS))
def test_bad_event_is_refused_and_changes_nothing(log: EventLog, bad: object) -> None:
    log.append([("before", b"b")])
    with pytest.raises(InvalidInputError, match="event 1"):
        log.append([("fine", b"ok"), bad])  # type: ignore[list-item]
    assert log.last_offset() == 1
    assert log.append([("fine", b"ok")]) == [Ack(2, False)]  # "fine" was not stored before


def test_longest_key_and_largest_payload_are_accepted(log: EventLog) -> None:
    key = "k" * MAX_KEY_LENGTH
    payload = os.urandom(MAX_PAYLOAD_BYTES)
    assert log.append([(key, payload)]) == [Ack(1, False)]
    assert log.read(0, 1) == [Record(1, key, payload)]


@pytest.mark.parametrize(
    ("after", "limit"), [(-1, 10), (0, 0), (0, MAX_READ_LIMIT + 1), (True, 5), (0, 2.5)]
)
def test_bad_read_arguments_are_refused(log: EventLog, after: object, limit: object) -> None:
    with pytest.raises(InvalidInputError, match="read"):
        log.read(after, limit)  # type: ignore[arg-type]


def test_append_does_not_mutate_its_input(log: EventLog) -> None:
    batch = [*_events(4), ("e-0", b"repeat")]
    copy = list(batch)
    log.append(batch)
    assert batch == copy


def test_concurrent_appends_lose_and_duplicate_nothing(log: EventLog) -> None:
    threads, per_thread = 8, 40
    acks: dict[str, list[Ack]] = {}
    guard = threading.Lock()
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(per_thread):
                # Every worker also sends the same "shared-i" keys: exactly one
                # of them may store each, and all must get the same offset.
                batch = [(f"w{worker}-{i}", b"own"), (f"shared-{i}", b"shared")]
                for (key, _), ack in zip(batch, log.append(batch), strict=True):
                    with guard:
                        acks.setdefault(key, []).append(ack)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not errors
    total = threads * per_thread + per_thread
    records = _read_all(log)
    assert [r.offset for r in records] == list(range(1, total + 1))
    assert len({r.key for r in records}) == total
    by_key = {r.key: r.offset for r in records}
    for key, key_acks in acks.items():
        assert {a.offset for a in key_acks} == {by_key[key]}
        assert sum(not a.duplicate for a in key_acks) == 1


def test_a_reader_tailing_during_appends_sees_each_event_once(log: EventLog) -> None:
    total, seen = 300, list[Record]()
    writers = [
        threading.Thread(
            target=lambda w=w: [log.append([(f"{w}-{i}", b"x")]) for i in range(total // 3)]
        )
        for w in range(3)
    ]
    for writer in writers:
        writer.start()
    deadline = time.monotonic() + 30
    while len(seen) < total and time.monotonic() < deadline:
        # Pages race the writers; each must still continue exactly where the last ended.
        seen.extend(log.read(seen[-1].offset if seen else 0, 17))
    for writer in writers:
        writer.join()
    assert [r.offset for r in seen] == list(range(1, total + 1))
    assert seen == _read_all(log)


def test_closed_log_refuses_calls(log: EventLog) -> None:
    log.close()
    log.close()  # idempotent
    with pytest.raises(LogClosedError):
        log.append([("k", b"v")])
    with pytest.raises(LogClosedError):
        log.read(0, 1)
    with pytest.raises(LogClosedError):
        log.last_offset()


_keys = st.sampled_from([f"key-{i}" for i in range(12)])
_batches = st.lists(st.lists(st.tuples(_keys, st.binary(min_size=1, max_size=20)), max_size=6))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=_batches)
def test_log_holds_first_occurrences_in_order(
    new_url: Callable[[], str], batches: list[list[tuple[str, bytes]]]
) -> None:
    """Random batches with repeated keys: the log is the first occurrence of each key,
    in order, and every ack points at its key's first occurrence."""
    first: dict[str, tuple[int, bytes]] = {}
    with open_log(new_url()) as log:  # a fresh log per example (new_url is a factory)
        for batch in batches:
            for (key, payload), ack in zip(batch, log.append(batch), strict=True):
                if key in first:
                    assert ack == Ack(first[key][0], duplicate=True)
                else:
                    first[key] = (len(first) + 1, payload)
                    assert ack == Ack(len(first), duplicate=False)
        expected = [Record(o, k, p) for k, (o, p) in sorted(first.items(), key=lambda i: i[1][0])]
        assert _read_all(log, page=5) == expected


# -- URLs --


def test_a_plain_path_and_a_file_url_open_the_same_log(tmp_path: Path) -> None:
    with open_log(str(tmp_path / "log")) as log:
        log.append([("k", b"v")])
    with open_log((tmp_path / "log").as_uri()) as log:
        assert isinstance(log, LocalLog)
        assert log.last_offset() == 1


@pytest.mark.parametrize(
    "url",
    ["", "redis://127.0.0.1/x", "file://otherhost/x", "file:///x?y=1", "nats://127.0.0.1:4222"],
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError):
        open_log(url)


def test_unreachable_nats_is_a_clear_error() -> None:
    with pytest.raises(StreamUnavailableError, match="cannot reach NATS"):
        open_log("nats://127.0.0.1:1/nowhere", timeout=1.0)


# -- local log only: the on-disk format --


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_torn_tail_is_truncated_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with LocalLog(tmp_path) as log:
        log.append(_events(3))
    segment = _segments(tmp_path)[-1]
    whole = segment.stat().st_size
    with LocalLog(tmp_path) as log:
        log.append([("torn", b"x" * 100)])
    frame = segment.read_bytes()[whole:]
    for tail in (frame[: len(frame) // 2], frame[:10], os.urandom(64), b"\0" * 200):
        segment.write_bytes(segment.read_bytes()[:whole] + tail)
        with caplog.at_level(logging.WARNING), LocalLog(tmp_path) as log:
            assert log.last_offset() == 3
            assert [(r.key, r.payload) for r in _read_all(log)] == _events(3)
        assert "torn tail" in caplog.text
        assert segment.stat().st_size == whole
        caplog.clear()
    with LocalLog(tmp_path) as log:  # the cut-off event was never acked: a retry stores it
        assert log.append([("torn", b"x" * 100)]) == [Ack(4, False)]


def test_a_flipped_bit_in_the_last_frame_drops_only_that_frame(tmp_path: Path) -> None:
    with LocalLog(tmp_path) as log:
        log.append(_events(3))
    segment = _segments(tmp_path)[-1]
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0x01
    segment.write_bytes(bytes(data))
    with LocalLog(tmp_path) as log:
        assert log.last_offset() == 2


def test_corruption_in_a_sealed_segment_refuses_to_open(tmp_path: Path) -> None:
    with LocalLog(tmp_path, segment_bytes=1024) as log:
        log.append([(f"k{i}", b"x" * 200) for i in range(10)])
    first = _segments(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[40] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="sealed segment"):
        LocalLog(tmp_path, segment_bytes=1024)


def test_a_missing_segment_refuses_to_open(tmp_path: Path) -> None:
    with LocalLog(tmp_path, segment_bytes=1024) as log:
        log.append([(f"k{i}", b"x" * 200) for i in range(10)])
    _segments(tmp_path)[1].unlink()
    with pytest.raises(CorruptLogError, match="missing"):
        LocalLog(tmp_path, segment_bytes=1024)


def test_segment_cut_short_at_creation_is_removed(tmp_path: Path) -> None:
    with LocalLog(tmp_path) as log:
        log.append(_events(2))
    (tmp_path / f"{3:020d}.seg").write_bytes(b"TFL")  # a crash right after creating it
    with LocalLog(tmp_path) as log:
        assert log.last_offset() == 2
        assert log.append([("k", b"v")]) == [Ack(3, False)]
    assert (tmp_path / f"{3:020d}.seg").stat().st_size > 16


def test_segments_roll_over_and_read_across_them(tmp_path: Path) -> None:
    events = [(f"k{i}", bytes([i]) * 100) for i in range(60)]
    with LocalLog(tmp_path, segment_bytes=1024) as log:
        log.append(events[:25])
        for event in events[25:]:
            log.append([event])
        assert len(_segments(tmp_path)) >= 6
        assert all(p.stat().st_size <= 1024 for p in _segments(tmp_path))
        assert [(r.key, r.payload) for r in log.read(5, 40)] == events[5:45]
    with LocalLog(tmp_path, segment_bytes=1024) as log:
        assert [(r.key, r.payload) for r in _read_all(log, page=13)] == events
        assert log.append(events[:2]) == [Ack(1, True), Ack(2, True)]


def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    log = LocalLog(tmp_path)
    with pytest.raises(LogLockedError, match=f"pid {os.getpid()}"):
        LocalLog(tmp_path)
    probe = "from trustfeed.stream import LocalLog; import sys; LocalLog(sys.argv[1])"
    other = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert other.returncode != 0
    assert "LogLockedError" in other.stderr
    log.close()
    LocalLog(tmp_path).close()  # released on close


def test_threads_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: appends that arrive during an fsync ride on the next one."""
    import trustfeed.stream._local as local

    calls = []
    real = local._datasync

    def slow_sync(fd: int) -> None:
        calls.append(fd)
        threading.Event().wait(0.005)  # a slow disk, so appends pile up behind it
        real(fd)

    monkeypatch.setattr(local, "_datasync", slow_sync)
    with LocalLog(tmp_path) as log:
        pool = [
            threading.Thread(
                target=lambda w=w: [log.append([(f"{w}-{i}", b"x")]) for i in range(10)]
            )
            for w in range(8)
        ]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert log.last_offset() == 80
    assert len(calls) < 40


def test_a_failed_fsync_stops_the_log_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trustfeed.stream._local as local

    log = LocalLog(tmp_path)
    log.append([("ok", b"v")])

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(local, "_datasync", broken)
    with pytest.raises(LogClosedError, match="failed to write"):
        log.append([("lost", b"v")])
    with pytest.raises(LogClosedError):
        log.append([("later", b"v")])
    log.close()
    monkeypatch.undo()
    with LocalLog(tmp_path) as again:
        assert again.read(0, 1) == [Record(1, "ok", b"v")]
        again.append([("later", b"v")])


#: Segment format version 1 holding ("a", b"hello") and ("bc", b"\x00\xff"). It
#: must keep loading as the format evolves (logs outlive releases).
V1_SEGMENT = bytes.fromhex(
    # header: magic "TFLOG\0", version 1 (u16), base offset 1 (u64)
    "54464c4f4700"
    "0100"
    "0100000000000000"
    # frame: crc32, offset 1 (u64), payload length 5 (u32), key length 1 (u16), key, payload
    "215a210d"
    "0100000000000000"
    "05000000"
    "0100"
    "61"
    "68656c6c6f"
    "84704edd"
    "0200000000000000"
    "02000000"
    "0200"
    "6263"
    "00ff"
)


def test_format_v1_segment_still_loads(tmp_path: Path) -> None:
    (tmp_path / f"{1:020d}.seg").write_bytes(V1_SEGMENT)
    with LocalLog(tmp_path) as log:
        assert log.read(0, 10) == [Record(1, "a", b"hello"), Record(2, "bc", b"\x00\xff")]


def test_new_segments_are_written_in_format_v1(tmp_path: Path) -> None:
    with LocalLog(tmp_path) as log:
        log.append([("a", b"hello"), ("bc", b"\x00\xff")])
    assert _segments(tmp_path)[0].read_bytes() == V1_SEGMENT

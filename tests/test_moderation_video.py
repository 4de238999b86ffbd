"""vPDQ on the sample videos in ../shared/moderation/video, and video banks on both backends.

What the files are: 14 MP4s from ThreatExchange's ``tmk/sample-videos`` and,
in ``vpdq-hashes/``, the reference vPDQ hasher's output for each, every frame
hashed (``frame,quality,hash,timestamp``). ``chair-*`` are one 22 s SD clip
with a caption bar, re-encoded (``orig``), cut to 19/20 s, made grey or
sepia, or given a small or large logo; ``*-hd-no-bar`` are the HD originals
without the bar (reference hashes only, no MP4 for the chair); ``pattern-*``
another clip the same way; ``doorknob`` and ``test-padded-dimensions`` are
unrelated.

What we found (and pin here): at 1 frame/s our frame hashes equal the
reference's on about half the frames and are within 6 bits on the rest, except
flat frames (quality < 50, never matched). Against the densely hashed
original, the re-encode, cuts, grey, sepia and small-logo variants match with
100 % of their frames; the **large logo is not caught** (9 %; ThreatExchange's
own README reports 10.6 % for the same pair) and **adding the caption bar is
not caught** (the HD no-bar originals match none of the bar variants, 0 %).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import (
    Actor,
    Banks,
    Gate,
    HashMatchScreener,
    InvalidSignal,
    Moderation,
    Status,
    UnsupportedMedia,
)
from trustfeed.moderation._vpdq import (
    VideoBank,
    VideoMatchScreener,
    VPDQFrame,
    VPDQHash,
    VPDQSignal,
    available,
    hash_video_file,
    is_video,
    match_hashes,
)
from trustfeed.storage import open_engine

pytestmark = pytest.mark.skipif(not available(), reason="vpdq is not built on this machine")

VPDQ = VPDQSignal()
CHAIR_MATCHES = [
    "chair-orig-22-sd-bar",
    "chair-19-sd-bar",
    "chair-20-sd-bar",
    "chair-22-sd-grey-bar",
    "chair-22-sd-sepia-bar",
    "chair-22-with-small-logo-bar",
]
PATTERN_BAR_VARIANTS = [
    "pattern-sd-grey-bar",
    "pattern-sd-with-large-logo-bar",
    "pattern-sd-with-small-logo-bar",
]


@pytest.fixture(scope="module")
def video_dir(shared_dir: Path) -> Path:
    d = shared_dir / "moderation" / "video"
    if not (d / "sample-videos").is_dir():
        pytest.skip("needs ../shared/moderation/video")
    return d


@pytest.fixture(scope="module")
def uploads(video_dir: Path) -> dict[str, VPDQHash]:
    """Every sample hashed as an upload (1 frame/s), once for the module."""
    return {p.stem: hash_video_file(p) for p in sorted((video_dir / "sample-videos").glob("*.mp4"))}


def reference(video_dir: Path, name: str) -> VPDQHash:
    """The reference hasher's dense hashes: what a bank holds."""
    return VPDQHash.from_reference_text((video_dir / "vpdq-hashes" / f"{name}.txt").read_text())


# ------------------------------------------------------------------ agreement with the reference
def test_frame_hashes_agree_with_the_reference(
    video_dir: Path, uploads: dict[str, VPDQHash]
) -> None:
    assert len(uploads) == 14
    exact = total = 0
    for name, ours in uploads.items():
        ref = {f.frame: f for f in reference(video_dir, name).frames}
        assert [f.timestamp for f in ours.frames] == [float(i) for i in range(len(ours))]
        for f in ours.frames:
            r = ref[f.frame]  # 1 frame/s samples frames 0, 30, 60, … of the dense reference
            assert abs(f.quality - r.quality) <= 1, (name, f.frame)
            if min(f.quality, r.quality) >= VPDQ.min_quality:
                total += 1
                exact += f.hash == r.hash
                assert _bits(f.hash, r.hash) <= 8, (name, f.frame)
                assert VPDQ.compare(_one(f.hash), _one(r.hash)).match
    # Measured: 96 of 191 usable frames identical, the rest 2–6 bits apart (FFmpeg 5.1 here).
    assert total >= 180 and exact >= total // 3


def test_dense_hashes_agree_frame_by_frame(video_dir: Path) -> None:
    ours = hash_video_file(
        video_dir / "sample-videos" / "pattern-sd-grey-bar.mp4", seconds_per_hash=0
    )
    ref = reference(video_dir, "pattern-sd-grey-bar")
    assert [f.frame for f in ours.frames] == [f.frame for f in ref.frames]
    distances = [_bits(a.hash, b.hash) for a, b in zip(ours.frames, ref.frames, strict=True)]
    assert max(distances) <= 8
    assert sum(d == 0 for d in distances) >= 150  # measured 178 of 206 identical


# ------------------------------------------------------------------ what matches what
@pytest.mark.parametrize("name", CHAIR_MATCHES)
def test_edited_variants_match_the_original(
    video_dir: Path, uploads: dict[str, VPDQHash], name: str
) -> None:
    found = match_hashes(uploads[name], reference(video_dir, "chair-orig-22-sd-bar"))
    assert found.query_match_percent == 100.0
    assert found.is_match()


def test_large_logo_is_not_caught(video_dir: Path, uploads: dict[str, VPDQHash]) -> None:
    """Documented gap: a logo covering much of the frame moves most frame hashes past 31."""
    found = match_hashes(
        uploads["chair-22-with-large-logo-bar"], reference(video_dir, "chair-orig-22-sd-bar")
    )
    assert found.query_match_percent < 20 and not found.is_match()


@pytest.mark.parametrize("original", ["chair-orig-22-hd-no-bar", "pattern-hd-no-bar"])
def test_adding_a_caption_bar_is_not_caught(
    video_dir: Path, uploads: dict[str, VPDQHash], original: str
) -> None:
    """Documented gap: the bar (letterboxing with text) changes every frame's PDQ."""
    bank = reference(video_dir, original)
    family = CHAIR_MATCHES if original.startswith("chair") else PATTERN_BAR_VARIANTS
    for name in family:
        assert match_hashes(uploads[name], bank).query_match_percent == 0.0, name


def test_a_longer_cut_matches_one_sided_only(video_dir: Path, uploads: dict[str, VPDQHash]) -> None:
    """Why the reverse direction is off by default: 1 frame/s against every frame."""
    found = match_hashes(
        uploads["pattern-longer-no-bar"], reference(video_dir, "pattern-hd-no-bar")
    )
    assert found.query_match_percent >= 80 and found.compared_match_percent < 30
    assert found.is_match() and not found.is_match(compared_threshold=80)
    two_sided = VPDQSignal(compared_threshold=80)
    up, bank = uploads["pattern-hd-no-bar"], reference(video_dir, "pattern-hd-no-bar")
    assert not two_sided.compare(up.to_json(), bank.to_json()).match
    assert two_sided.compare(up.to_json(), up.to_json()).match


def test_unrelated_videos_do_not_match(video_dir: Path, uploads: dict[str, VPDQHash]) -> None:
    banks = {
        "chair": reference(video_dir, "chair-orig-22-sd-bar"),
        "pattern": reference(video_dir, "pattern-hd-no-bar"),
        "doorknob": reference(video_dir, "doorknob-hd-no-bar"),
    }
    for name, video in uploads.items():
        for family, bank in banks.items():
            if name.startswith(family):
                continue
            assert match_hashes(video, bank).query_match_percent == 0.0, (name, family)


# ------------------------------------------------------------------ the signal type's contract
def test_vpdq_keeps_the_signal_type_contract() -> None:
    """The shared suite of ``test_moderation_signals`` (until vPDQ is in SIGNAL_TYPES)."""
    for value in VPDQ.examples():
        assert VPDQ.validate(value.upper()) == value
        assert VPDQ.compare(value, value) == VPDQ.compare(value, value)
        assert VPDQ.compare(value, value).match and VPDQ.compare(value, value).distance == 0
    with pytest.raises(InvalidSignal):
        VPDQ.validate("zz" * 16)
    assert VPDQ.threshold == 31 and VPDQ.min_quality == 50 and VPDQ.name == "vpdq"


def test_serialisation_round_trips_and_reads_threatexchange_json() -> None:
    video = VPDQHash.from_json(VPDQ.examples()[0])
    assert VPDQHash.from_json(video.to_json()) == video
    theirs = json.dumps([f"{f.hash},{f.quality},{f.timestamp:.3f}" for f in video.frames])
    assert [f.hash for f in VPDQHash.from_json(theirs).frames] == [f.hash for f in video.frames]
    for bad in [
        "not json",
        '{"v": 2, "frames": []}',
        '{"v": 1, "frames": [[0, 101, "' + "0" * 64 + '", 0]]}',
        '{"v": 1, "frames": [[1, 9, "' + "0" * 64 + '", 0], [1, 9, "' + "0" * 64 + '", 1]]}',
        '["00,100,0.0"]',
    ]:
        with pytest.raises(InvalidSignal):
            VPDQ.validate(bad)


def test_flat_videos_match_nothing() -> None:
    flat = VPDQHash((VPDQFrame(0, 10, "0" * 64, 0.0),))
    assert match_hashes(flat, flat).query_match_percent == 0.0
    assert match_hashes(VPDQHash(()), flat).query_match_percent == 0.0


def test_non_videos_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(b"definitely not a video")
    with pytest.raises(UnsupportedMedia):
        hash_video_file(path)
    with pytest.raises(UnsupportedMedia):
        VPDQ.hash_bytes(b"")
    assert not is_video(b"")


# ------------------------------------------------------------------ video banks, both backends
@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Gate, Banks, VideoBank]]:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    gate = Gate(engine, sink=ledger, clock=lambda: 1000.0)
    banks = Banks(engine, gate=gate, clock=lambda: 1000.0)
    try:
        yield gate, banks, VideoBank(engine, banks=banks, gate=gate, clock=lambda: 1000.0)
    finally:
        ledger.close()
        engine.dispose()


def _video(seed: int, frames: int = 10) -> VPDQHash:
    """Synthetic frames: distinct 256-bit values from a seed (far apart with high probability)."""
    rng = random.Random(seed)
    return VPDQHash(
        tuple(
            VPDQFrame(i * 30, 100, f"{rng.getrandbits(256):064x}", float(i)) for i in range(frames)
        )
    )


def test_video_bank_matches_and_rescans(store) -> None:
    gate, banks, videos = store
    banks.create("violent", action=Status.REMOVED)
    gate.upload(1, actor=_UP)
    gate.upload(2, actor=_UP)
    gate.decide(1, Status.ELIGIBLE, reason="ok", actor=_RULE)
    gate.decide(2, Status.ELIGIBLE, reason="ok", actor=_RULE)
    videos.store_item(1, _video(1))
    videos.store_item(2, _video(2))
    assert videos.item_video(1) == _video(1) and videos.item_video(3) is None
    report = videos.add("violent", _video(1, frames=20), note="known clip")
    assert report.matched == [1] and report.moved == [1]
    assert gate.status(1) is Status.REMOVED and gate.status(2) is Status.ELIGIBLE
    assert gate.history(1)[-1].actor == "rule:bank:violent"
    [m] = videos.match(_video(1, frames=5)).actionable
    assert (m.bank, m.query_match_percent, m.compared_match_percent) == ("violent", 100.0, 25.0)
    assert videos.match(_video(2)).matches == []


def test_negative_and_disabled_banks(store) -> None:
    _, banks, videos = store
    banks.create("bad", action=Status.QUARANTINED)
    banks.create("allow", negative=True)
    videos.add("bad", _video(5))
    assert videos.match(_video(5)).actionable
    videos.add("allow", _video(5))
    result = videos.match(_video(5))
    assert result.matches and result.suppressed_by and not result.actionable
    banks.set_enabled("allow", False)
    banks.set_enabled("bad", False)
    assert videos.match(_video(5)).matches == []


def test_screener_hashes_stores_and_matches_real_video(video_dir: Path, tmp_path: Path) -> None:
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    engine = open_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        gate = Gate(engine, sink=ledger)
        banks = Banks(engine, gate=gate)
        videos = VideoBank(engine, banks=banks, gate=gate)
        banks.create("known", action=Status.REMOVED)
        videos.add("known", reference(video_dir, "chair-orig-22-sd-bar"))
        step = VideoMatchScreener(videos, banks, images=HashMatchScreener(banks))
        mod = Moderation(gate, banks, steps=[step])
        clip = (video_dir / "sample-videos" / "chair-22-sd-sepia-bar.mp4").read_bytes()
        other = (video_dir / "sample-videos" / "doorknob-hd-no-bar.mp4").read_bytes()
        assert mod.submit(1, clip, uploader="c1") is Status.REMOVED
        assert mod.submit(2, other, uploader="c2") is Status.ELIGIBLE
        assert mod.submit(3, b"neither image nor video", uploader="c3") is (
            Status.NOT_RECOMMENDABLE
        )
        assert {v.signal for v in banks.item_signals(2)} == {"md5", "sha256"}
        assert videos.item_video(2) is not None
    finally:
        ledger.close()
        engine.dispose()


_UP = Actor("uploader", "creator-1")
_RULE = Actor("rule", "r1")


def _one(value: str) -> str:
    return VPDQHash((VPDQFrame(0, 100, value, 0.0),)).to_json()


def _bits(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_vpdq_command_prints_frame_hashes(video_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trustfeed.moderation import moderation_app
    from trustfeed.moderation._cli_video import vpdq_command  # noqa: F401  (registers it)

    path = video_dir / "sample-videos" / "pattern-sd-grey-bar.mp4"
    result = CliRunner().invoke(moderation_app, ["vpdq", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["frames"]) == 7 and out["seconds_per_hash"] == 1.0
    assert VPDQHash.from_json(out["vpdq"]) == hash_video_file(path)
    (tmp_path / "x.mp4").write_bytes(b"nope")
    bad = CliRunner().invoke(moderation_app, ["vpdq", str(tmp_path / "x.mp4")])
    assert bad.exit_code == 2 and "not a video" in bad.stderr

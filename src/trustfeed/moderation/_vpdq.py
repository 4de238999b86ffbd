"""vPDQ, Meta's video hash: PDQ of video frames, matched as sets of frames.

Why frames rather than one hash per video: a clip cut from a banked video, or
the video with a logo or a caption bar added, still shares most of its frames
with the original, so it is caught where a whole-file hash is not.

How we use it (issue 4, section 2; ThreatExchange's ``extensions/vpdq``):

1. the bank side is hashed densely (every frame, ``seconds_per_hash=0``), an
   upload at one frame per second (``seconds_per_hash=1``): the upload's few
   frames are then always near some bank frame, whatever the phase of sampling;
2. frames below quality 50 are dropped and repeated hashes counted once, on
   both sides, before anything is counted;
3. ``query_match_percent`` is the share of the upload's frames within distance
   31 (each bank's own PDQ threshold) of some bank frame;
   ``compared_match_percent`` is the share of the bank video's frames within
   that distance of some upload frame;
4. a match needs ``query_match_percent`` ≥ 80. Like ThreatExchange's
   ``VPDQSignal`` (whose compared threshold defaults to 0 %) we do **not**
   require the reverse direction by default: a short clip cut from a long
   banked video must still match, and the bank side, hashed densely, holds many
   frames an upload at 1 frame/s never samples. ``compared_threshold`` turns
   the two-sided rule on where a bank wants only whole-video copies.

Serialised form (plain JSON, never pickle)::

    {"v": 1, "frames": [[frame_number, quality, "64 hex digits", timestamp], ...]}

ThreatExchange's own JSON (a list of ``"hex,quality,timestamp"`` strings) is
read too, so shared hash lists can be banked as they come.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import sqlalchemy as sa

from trustfeed.moderation import _tables as t
from trustfeed.moderation._bank_rules import MatchResult
from trustfeed.moderation._errors import InvalidSignal, ModerationError, UnsupportedMedia
from trustfeed.moderation._gate import Clock, Gate, ScreeningStep, Verdict
from trustfeed.moderation._signals import Comparison, MD5Signal, SHA256Signal, SignalValue
from trustfeed.moderation._status import SEVERITY, Actor, Status
from trustfeed.storage import ROW_ID

if TYPE_CHECKING:
    from trustfeed.moderation._banks import Bank, Banks

try:  # probed once: the module still imports (and says why) where vpdq is not built
    import vpdq as _vpdq_lib
except ImportError as _exc:  # pragma: no cover - depends on the machine
    _vpdq_lib = None
    _IMPORT_ERROR: str | None = str(_exc)
else:
    _IMPORT_ERROR = None

#: Serialisation format written by :meth:`VPDQHash.to_json`.
FORMAT = 1
#: Per-frame PDQ distance at or below which two frames match (ThreatExchange's 31).
FRAME_THRESHOLD = 31
#: Frames below this PDQ quality are too flat to mean anything; never matched.
MIN_QUALITY = 50
#: Share (percent) of the upload's usable frames that must match a bank video.
QUERY_MATCH_PERCENT = 80.0
#: Share of the bank video's frames that must match the upload (0 = one-sided).
COMPARED_MATCH_PERCENT = 0.0
#: Sampling of uploads (seconds between hashed frames) and of bank videos (0 = every frame).
UPLOAD_SECONDS_PER_HASH = 1.0
BANK_SECONDS_PER_HASH = 0.0
_HEX = re.compile(r"^[0-9a-f]{64}$")


def available() -> bool:
    """Whether the ``vpdq`` extension is importable here (it needs FFmpeg's libraries)."""
    return _vpdq_lib is not None


# ---------------------------------------------------------------------- values
@dataclass(frozen=True)
class VPDQFrame:
    """One hashed frame: its number in the video, PDQ quality (0–100), hash and time (s)."""

    frame: int
    quality: int
    hash: str
    timestamp: float

    def __post_init__(self) -> None:
        if self.frame < 0 or not 0 <= self.quality <= 100:
            raise InvalidSignal(f"bad vPDQ frame {self.frame} quality {self.quality}")
        if not _HEX.match(self.hash):
            raise InvalidSignal(f"not a PDQ frame hash: {self.hash[:80]!r}")
        if not (math.isfinite(self.timestamp) and self.timestamp >= 0):
            raise InvalidSignal(f"bad vPDQ timestamp {self.timestamp!r}")


@dataclass(frozen=True)
class VPDQHash:
    """A video's frames in order: what banks store and uploads are matched by."""

    frames: tuple[VPDQFrame, ...]

    def __post_init__(self) -> None:
        numbers = [f.frame for f in self.frames]
        if any(b <= a for a, b in pairwise(numbers)):
            raise InvalidSignal("vPDQ frame numbers must strictly increase")

    def __len__(self) -> int:
        return len(self.frames)

    def to_json(self) -> str:
        """The canonical text form (timestamps to the millisecond, as ThreatExchange).

        >>> VPDQHash((VPDQFrame(0, 100, "0" * 64, 0.0),)).to_json()[:24]
        '{"v":1,"frames":[[0,100,'
        """
        rows = [[f.frame, f.quality, f.hash, round(f.timestamp, 3)] for f in self.frames]
        return json.dumps({"v": FORMAT, "frames": rows}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> VPDQHash:
        """Our JSON, or ThreatExchange's list of ``"hex,quality,timestamp"`` strings."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise InvalidSignal(f"vPDQ hash is not JSON: {exc}") from exc
        if isinstance(data, list):
            return cls._from_threatexchange(data)
        if isinstance(data, dict):  # key case is not significant, like hex case
            data = {str(k).lower(): v for k, v in data.items()}
        if not isinstance(data, dict) or data.get("v") != FORMAT:
            raise InvalidSignal(f"not a vPDQ hash of format {FORMAT}")
        try:
            frames = tuple(
                VPDQFrame(int(n), int(q), str(h).lower(), float(ts))
                for n, q, h, ts in data["frames"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidSignal(f"malformed vPDQ frames: {exc}") from exc
        return cls(frames)

    @classmethod
    def _from_threatexchange(cls, items: list[Any]) -> VPDQHash:
        frames = []
        for number, item in enumerate(items):
            parts = str(item).split(",")
            if len(parts) != 3:
                raise InvalidSignal(f"not a ThreatExchange vPDQ feature: {str(item)[:80]!r}")
            try:
                frames.append(VPDQFrame(number, int(parts[1]), parts[0].lower(), float(parts[2])))
            except ValueError as exc:
                raise InvalidSignal(f"malformed vPDQ feature {str(item)[:80]!r}") from exc
        return cls(tuple(frames))

    @classmethod
    def from_reference_text(cls, text: str) -> VPDQHash:
        """The ``frame,quality,hash,timestamp`` lines of vPDQ's regression files."""
        frames = []
        for line in text.splitlines():
            if line.strip():
                n, q, h, ts = line.strip().split(",")
                frames.append(VPDQFrame(int(n), int(q), h.lower(), float(ts)))
        return cls(tuple(frames))

    def usable(self, min_quality: int = MIN_QUALITY) -> list[str]:
        """Step 2 of the module docstring: quality-filtered hashes, each once, in order."""
        return list(dict.fromkeys(f.hash for f in self.frames if f.quality >= min_quality))


@dataclass(frozen=True)
class VPDQMatch:
    """ThreatExchange's two-sided percentages for one pair of videos."""

    query_match_percent: float
    compared_match_percent: float

    def is_match(
        self,
        query_threshold: float = QUERY_MATCH_PERCENT,
        compared_threshold: float = COMPARED_MATCH_PERCENT,
    ) -> bool:
        """Step 4 of the module docstring."""
        return (
            self.query_match_percent >= query_threshold
            and self.compared_match_percent >= compared_threshold
        )


def _words(hashes: Sequence[str]) -> np.ndarray:
    """Hex hashes as (n, 4) uint64 words, for vectorised popcounts."""
    if not hashes:
        return np.zeros((0, 4), np.uint64)
    raw = np.frombuffer(bytes.fromhex("".join(hashes)), np.uint8).reshape(-1, 32)
    return raw.view(np.uint64)


def _near(query: np.ndarray, compared: np.ndarray, threshold: int) -> np.ndarray:
    """(m, n) bool: query frame i is within ``threshold`` of compared frame j."""
    out = np.zeros((len(query), len(compared)), bool)
    for i, q in enumerate(query):  # one row at a time keeps memory at O(n)
        out[i] = np.bitwise_count(compared ^ q).sum(axis=1) <= threshold
    return out


def match_hashes(
    query: VPDQHash,
    compared: VPDQHash,
    *,
    threshold: int = FRAME_THRESHOLD,
    min_quality: int = MIN_QUALITY,
) -> VPDQMatch:
    """Steps 2–3 of the module docstring for one upload (``query``) and one bank video.

    A side with no usable frame (all flat, or empty) matches nothing (0 %),
    where ThreatExchange would divide by zero.
    """
    q, c = query.usable(min_quality), compared.usable(min_quality)
    if not q or not c:
        return VPDQMatch(0.0, 0.0)
    near = _near(_words(q), _words(c), threshold)
    return VPDQMatch(
        100.0 * int(near.any(axis=1).sum()) / len(q),
        100.0 * int(near.any(axis=0).sum()) / len(c),
    )


# ---------------------------------------------------------------------- hashing
def hash_video_file(
    path: str | Path, *, seconds_per_hash: float = UPLOAD_SECONDS_PER_HASH, threads: int = 0
) -> VPDQHash:
    """vPDQ of a video file; ``seconds_per_hash=0`` hashes every frame (the bank side)."""
    if _vpdq_lib is None:
        raise UnsupportedMedia(
            f"vPDQ is not available here ({_IMPORT_ERROR}): install the `video` extra, "
            "which builds against FFmpeg's libraries (`make system-deps`)"
        )
    try:
        features = _vpdq_lib.computeHash(
            str(path), seconds_per_hash=seconds_per_hash, thread_count=threads
        )
    except Exception as exc:  # vpdq raises bare Exception/ValueError for unreadable input
        raise UnsupportedMedia(f"not a video vPDQ can read: {exc}") from exc
    return VPDQHash(
        tuple(
            VPDQFrame(int(f.frame_number), int(f.quality), f.hex, float(f.timestamp))
            for f in features
        )
    )


def hash_video_bytes(
    data: bytes, *, seconds_per_hash: float = UPLOAD_SECONDS_PER_HASH, threads: int = 0
) -> VPDQHash:
    """:func:`hash_video_file` for bytes: FFmpeg reads files, so through a temporary one."""
    if not data:
        raise UnsupportedMedia("empty file")
    with tempfile.NamedTemporaryFile(prefix="trustfeed-vpdq-") as tmp:
        tmp.write(data)
        tmp.flush()
        return hash_video_file(tmp.name, seconds_per_hash=seconds_per_hash, threads=threads)


def is_video(data: bytes) -> bool:
    """Whether the bytes start like a video container (MP4/MOV, WebM/MKV, AVI).

    >>> is_video(bytes.fromhex("0000001c") + b"ftypisom")
    True
    >>> is_video(b"\\x89PNG\\r\\n\\x1a\\n")
    False
    """
    head = data[:16]
    return (
        head[4:8] == b"ftyp"
        or head[:4] == b"\x1a\x45\xdf\xa3"
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
    )


class VPDQSignal:
    """The vPDQ signal type (the ``SignalType`` protocol of ``_signals``).

    ``threshold`` is the per-frame PDQ distance; ``compare`` reports as its
    distance the percentage of the first video's usable frames that found no
    match (0 = every frame matched), so "smaller is closer" holds as for PDQ.
    """

    name: ClassVar[str] = "vpdq"
    threshold: ClassVar[int] = FRAME_THRESHOLD
    min_quality: ClassVar[int] = MIN_QUALITY

    def __init__(
        self,
        *,
        seconds_per_hash: float = UPLOAD_SECONDS_PER_HASH,
        query_threshold: float = QUERY_MATCH_PERCENT,
        compared_threshold: float = COMPARED_MATCH_PERCENT,
        threads: int = 0,
    ) -> None:
        if seconds_per_hash < 0 or threads < 0:
            raise ModerationError("seconds_per_hash and threads must be ≥ 0")
        self.seconds_per_hash = seconds_per_hash
        self.query_threshold = query_threshold
        self.compared_threshold = compared_threshold
        self.threads = threads

    def hash_bytes(self, data: bytes) -> list[SignalValue]:
        """One value: the JSON of every sampled frame (quality None: it is per frame)."""
        video = hash_video_bytes(data, seconds_per_hash=self.seconds_per_hash, threads=self.threads)
        return [SignalValue(self.name, video.to_json())]

    def hash_file(self, path: str | Path) -> list[SignalValue]:
        video = hash_video_file(path, seconds_per_hash=self.seconds_per_hash, threads=self.threads)
        return [SignalValue(self.name, video.to_json())]

    def validate(self, value: str) -> str:
        return VPDQHash.from_json(value).to_json()

    def match(self, a: str, b: str, threshold: int | None = None) -> VPDQMatch:
        """Both percentages, ``a`` as the upload and ``b`` as the bank video."""
        limit = self.threshold if threshold is None else threshold
        return match_hashes(VPDQHash.from_json(a), VPDQHash.from_json(b), threshold=limit)

    def compare(self, a: str, b: str, threshold: int | None = None) -> Comparison:
        """Whether upload ``a`` matches bank video ``b`` (module docstring, step 4).

        >>> v = VPDQSignal().examples()[0]
        >>> VPDQSignal().compare(v, v)
        Comparison(match=True, distance=0)
        """
        found = self.match(a, b, threshold)
        unmatched = 100 - math.floor(found.query_match_percent)
        return Comparison(found.is_match(self.query_threshold, self.compared_threshold), unmatched)

    def examples(self) -> list[str]:
        # Two frames: ThreatExchange's PDQ of bridge-1-original.jpg, then its bit-complement.
        first = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"
        second = f"{int(first, 16) ^ ((1 << 256) - 1):064x}"
        frames = (VPDQFrame(0, 100, first, 0.0), VPDQFrame(30, 100, second, 1.0))
        return [VPDQHash(frames).to_json()]


def hash_video(data: bytes, *, vpdq: VPDQSignal | None = None) -> list[SignalValue]:
    """Every signal of an uploaded video: md5, sha256 and vPDQ at 1 frame/s.

    The entry point ``hash_media`` would call for videos (it hashes images only).
    """
    if not data:
        raise UnsupportedMedia("empty file")
    values = MD5Signal().hash_bytes(data) + SHA256Signal().hash_bytes(data)
    return values + (vpdq or VPDQSignal()).hash_bytes(data)


# ---------------------------------------------------------------------- tables

#: Video bank entries: the bank (settings in ``moderation_banks``) and a digest of the frames.
vpdq_entries = sa.Table(
    "moderation_vpdq_entries",
    t.metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("bank", sa.String(64), sa.ForeignKey("moderation_banks.name"), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("note", sa.String(200), nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.UniqueConstraint("bank", "digest", name="uq_moderation_vpdq_entry"),
)

#: Frames of bank videos (dense) and of uploaded items (1 frame/s); ``owner`` says which.
vpdq_frames = sa.Table(
    "moderation_vpdq_frames",
    t.metadata,
    sa.Column("owner", sa.String(8), primary_key=True),  # "entry" or "item"
    sa.Column("owner_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("frame", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("quality", sa.SmallInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
)
_ENTRY, _ITEM = "entry", "item"


def _frame_rows(owner: str, owner_id: int, video: VPDQHash) -> list[dict[str, Any]]:
    return [
        {
            "owner": owner,
            "owner_id": owner_id,
            "frame": f.frame,
            "quality": f.quality,
            "hash": f.hash,
            "timestamp": f.timestamp,
        }
        for f in video.frames
    ]


def _read_frames(conn: sa.Connection, owner: str, ids: Iterable[int] | None) -> dict[int, VPDQHash]:
    c = vpdq_frames.c
    query = sa.select(c.owner_id, c.frame, c.quality, c.hash, c.timestamp).where(c.owner == owner)
    if ids is not None:
        query = query.where(c.owner_id.in_(list(ids)))
    grouped: dict[int, list[VPDQFrame]] = {}
    for oid, frame, quality, value, ts in conn.execute(query.order_by(c.owner_id, c.frame)):
        grouped.setdefault(int(oid), []).append(VPDQFrame(frame, quality, value, float(ts)))
    return {k: VPDQHash(tuple(v)) for k, v in grouped.items()}


# ---------------------------------------------------------------------- banks
@dataclass(frozen=True)
class VideoBankMatch:
    """One banked video an upload matched, with both percentages."""

    bank: str
    entry_id: int
    query_match_percent: float
    compared_match_percent: float

    @property
    def distance(self) -> int:
        """Percent of the upload's usable frames that matched nothing (as ``compare``)."""
        return 100 - math.floor(self.query_match_percent)


#: Positive video matches, and allow-list matches that suppress them (the banks' rule).
VideoMatchResult = MatchResult[VideoBankMatch]


@dataclass(frozen=True)
class VideoRescanReport:
    """What adding one video to a bank did to already published items."""

    entry_id: int
    matched: list[int]
    suppressed: list[int]
    moved: list[int]
    seconds: float


class VideoBank:
    """vPDQ contents of the existing banks, matching, and re-scans on add.

    Bank settings (action, negative, enabled, ``disable_until``) are the
    ``moderation_banks`` rows :class:`Banks` manages; a bank's PDQ threshold is
    also its per-frame vPDQ distance. Matching is brute force over every banked
    frame (numpy popcounts): fine for thousands of banked videos; beyond that
    the frames belong in a multi-index hash like the PDQ index.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        banks: Banks,
        gate: Gate,
        clock: Clock = time.time,
        signal: VPDQSignal | None = None,
    ) -> None:
        self._engine = engine
        self._banks = banks
        self._gate = gate
        self._clock = clock
        self.signal = signal or VPDQSignal()
        t.metadata.create_all(engine)

    def add(self, bank: str, video: VPDQHash, *, note: str = "") -> VideoRescanReport:
        """Bank a (densely hashed) video, then re-scan stored uploads against it."""
        settings = self._banks.get(bank)
        digest = _digest(video)
        with self._engine.begin() as conn:
            row = {"bank": bank, "digest": digest, "note": note[:200], "added_at": self._clock()}
            key: Any = conn.execute(vpdq_entries.insert().values(**row)).inserted_primary_key
            entry_id = int(key[0])
            conn.execute(vpdq_frames.insert(), _frame_rows(_ENTRY, entry_id, video))
        return self._rescan(settings, entry_id, video)

    def add_file(self, bank: str, path: str | Path, *, note: str = "") -> VideoRescanReport:
        """Hash a video densely (step 1 of ``_vpdq``'s docstring) and bank it."""
        video = hash_video_file(path, seconds_per_hash=BANK_SECONDS_PER_HASH)
        return self.add(bank, video, note=note or Path(path).name)

    def store_item(self, item_id: int, video: VPDQHash) -> None:
        """Keep an upload's frames so later bank additions can re-scan it."""
        c = vpdq_frames.c
        with self._engine.begin() as conn:
            conn.execute(vpdq_frames.delete().where(c.owner == _ITEM, c.owner_id == item_id))
            if video.frames:
                conn.execute(vpdq_frames.insert(), _frame_rows(_ITEM, item_id, video))

    def item_video(self, item_id: int) -> VPDQHash | None:
        """The frames stored for an item, or None if it was never hashed as a video."""
        with self._engine.connect() as conn:
            return _read_frames(conn, _ITEM, [item_id]).get(item_id)

    def match(self, video: VPDQHash) -> VideoMatchResult:
        """Match an upload against every banked video of every active bank."""
        now = self._clock()
        active = {b.name: b for b in self._banks.all() if b.active(now)}
        with self._engine.connect() as conn:
            entries = {
                int(i): bank
                for i, bank in conn.execute(sa.select(vpdq_entries.c.id, vpdq_entries.c.bank))
                if bank in active
            }
            videos = _read_frames(conn, _ENTRY, entries) if entries else {}
        found = []
        for entry_id, banked in sorted(videos.items()):
            bank = active[entries[entry_id]]
            m = match_hashes(video, banked, threshold=bank.pdq_threshold)
            if m.is_match(self.signal.query_threshold, self.signal.compared_threshold):
                found.append(
                    VideoBankMatch(
                        bank.name, entry_id, m.query_match_percent, m.compared_match_percent
                    )
                )
        return MatchResult.split(found, lambda m: active[m.bank].negative)

    def _rescan(self, bank: Bank, entry_id: int, banked: VPDQHash) -> VideoRescanReport:
        """Steps: (1) match every stored upload against the new video at the bank's
        threshold; (2) drop those an active negative bank allows; (3) escalate the
        rest through the gate, recorded as the bank's rule."""
        start = time.perf_counter()
        if bank.negative or not bank.active(self._clock()):
            return VideoRescanReport(entry_id, [], [], [], time.perf_counter() - start)
        with self._engine.connect() as conn:
            uploads = _read_frames(conn, _ITEM, None)
        matched = sorted(
            item
            for item, video in uploads.items()
            if match_hashes(video, banked, threshold=bank.pdq_threshold).is_match(
                self.signal.query_threshold, self.signal.compared_threshold
            )
        )
        suppressed = [i for i in matched if self.match(uploads[i]).suppressed_by]
        to_move = [i for i in matched if i not in set(suppressed)]
        reason = f"re-scan: bank {bank.name} video entry {entry_id} (vpdq) matched"
        moved = self._gate.escalate(
            to_move, bank.action, reason=reason, actor=Actor("rule", f"bank:{bank.name}")
        )
        elapsed = time.perf_counter() - start
        return VideoRescanReport(entry_id, matched, suppressed, [m.item_id for m in moved], elapsed)


def _digest(video: VPDQHash) -> str:
    """A short key for a banked video, so the same frames are banked once per bank."""
    return hashlib.sha256(video.to_json().encode()).hexdigest()


class VideoMatchScreener:
    """Screening step for videos: md5/sha256 against the banks, vPDQ against video banks.

    Non-video bytes go to ``images`` (say a ``HashMatchScreener``) when given,
    else raise :class:`UnsupportedMedia` so the gate fails closed.
    """

    name = "video-hash-match"

    def __init__(
        self, videos: VideoBank, banks: Banks, *, images: ScreeningStep | None = None
    ) -> None:
        self._videos = videos
        self._banks = banks
        self._images = images

    def screen(self, item_id: int, media: bytes) -> Verdict | None:
        if not is_video(media):
            if self._images is None:
                raise UnsupportedMedia("not a video, and no image step configured")
            return self._images.screen(item_id, media)
        values = hash_video(media, vpdq=self._videos.signal)
        exact = [v for v in values if v.signal != VPDQSignal.name]
        video = VPDQHash.from_json(values[-1].value)
        self._banks.store_signals(item_id, exact)
        self._videos.store_item(item_id, video)
        hashed, framed = self._banks.match(exact), self._videos.match(video)
        if hashed.suppressed_by or framed.suppressed_by:
            return None
        hits: list[tuple[str, str]] = [
            (m.bank, f"bank {m.bank} entry {m.entry_id} ({m.signal})") for m in hashed.matches
        ]
        hits += [
            (m.bank, f"bank {m.bank} video {m.entry_id} (vpdq, {m.query_match_percent:.0f}%)")
            for m in framed.matches
        ]
        if not hits:
            return None
        actions = _actions(self._banks.all())
        bank, reason = max(hits, key=lambda h: SEVERITY[actions[h[0]]])
        return Verdict(actions[bank], reason, Actor("rule", f"bank:{bank}"))


def _actions(banks: Iterable[Bank]) -> dict[str, Status]:
    return {b.name: b.action for b in banks}

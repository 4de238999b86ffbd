"""vPDQ benchmark: a ~22 s SD clip hashed at 1 frame/s (uploads) and densely (banks).

Run: ``.venv/bin/python benchmarks/bench_vpdq.py [--runs 5] [--threads 0]``.
Target (issue #4 §6): vPDQ of a 22 s SD clip at 1 frame/s ≤ 1 s. The clip is
``chair-22-sd-grey-bar.mp4`` (480×720, 30 fps, 22.4 s) from
``../shared/moderation/video`` when present, else a synthetic 22 s 640×480
clip that FFmpeg renders into a temporary file. Every frame must still be
decoded at 1 frame/s (H.264 frames depend on each other), so decoding, not
PDQ, sets the floor; the dense figure shows what hashing every frame adds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from trustfeed.moderation._vpdq import (
    hash_video_bytes,
    hash_video_file,
    match_hashes,
)

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "moderation"
    / "video"
    / "sample-videos"
    / "chair-22-sd-grey-bar.mp4"
)
T = TypeVar("T")


def _synthetic(folder: Path) -> Path:
    """A 22 s 640×480 30 fps H.264 test pattern, for machines without ../shared."""
    out = folder / "synthetic-22s-sd.mp4"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30"]
    subprocess.run([*cmd, "-t", "22", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def _median(fn: Callable[[], T], runs: int) -> tuple[float, T]:
    """Median wall time of ``runs`` calls, and the last call's result."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="vpdq threads (0 = automatic)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = SAMPLE if SAMPLE.is_file() else _synthetic(Path(tmp))
        data = clip.read_bytes()
        hash_video_file(clip, threads=args.threads)  # warm-up: codec and page cache
        upload_s, upload = _median(lambda: hash_video_file(clip, threads=args.threads), args.runs)
        bytes_s, _ = _median(lambda: hash_video_bytes(data, threads=args.threads), args.runs)
        dense_s, dense = _median(
            lambda: hash_video_file(clip, seconds_per_hash=0, threads=args.threads),
            max(1, args.runs // 2),
        )
        match_s, found = _median(lambda: match_hashes(upload, dense), args.runs)
    print(f"clip: {clip.name} ({len(data) / 1e6:.1f} MB), threads={args.threads or 'auto'}")
    print(
        f"  1 frame/s (upload) : {upload_s * 1000:7.0f} ms  ({len(upload)} frames), target ≤ 1000"
    )
    print(f"  1 frame/s from bytes: {bytes_s * 1000:6.0f} ms  (temporary file included)")
    print(f"  every frame (bank) : {dense_s * 1000:7.0f} ms  ({len(dense)} frames)")
    print(f"  match upload vs bank video: {match_s * 1000:.1f} ms  ({found})")


if __name__ == "__main__":
    main()

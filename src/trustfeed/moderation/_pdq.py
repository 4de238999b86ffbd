"""PDQ, Meta's perceptual image hash, with one fixed preprocessing.

Why fix the preprocessing: two hashers that decode or scale differently give
hashes a few bits apart, which eats into the match threshold. Every image is
therefore (1) decoded by Pillow (JPEGs at a reduced DCT scale where that still
leaves ≥ 512 px), (2) turned upright by its EXIF orientation, (3) converted to
RGB, (4) scaled with a box filter so the longer side is at most 512 px, and
only then (5) hashed by ``pdqhash`` together with its 8 rotations/flips.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pdqhash
from PIL import Image, ImageOps, UnidentifiedImageError

from trustfeed.moderation._errors import InvalidSignal, UnsupportedMedia
from trustfeed.moderation._signals import Comparison, SignalValue, hamming_hex

#: Longer side, in pixels, that every image is scaled down to before hashing.
MAX_SIDE = 512
#: Images with more pixels than this are refused rather than decoded (decompression bombs).
MAX_PIXELS = 100_000_000
#: Names of pdqhash's dihedral outputs, in its order (variant index = position).
DIHEDRAL = (
    "original",
    "rotate-90",
    "rotate-180",
    "rotate-270",
    "flip-x",
    "flip-y",
    "flip-plus-1",
    "flip-minus-1",
)
_HEX = re.compile(r"^[0-9a-f]{64}$")


def load_image(data: bytes) -> np.ndarray:
    """Steps 1–4 of the module docstring: an upright RGB uint8 array, ≤ 512 px."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise UnsupportedMedia(f"image too large: {im.width}×{im.height} pixels")
                im.draft("RGB", (MAX_SIDE, MAX_SIDE))
                upright = ImageOps.exif_transpose(im).convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia(f"not a supported image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise UnsupportedMedia(f"unreadable image: {exc}") from exc
    return np.asarray(_shrink(upright))


def _shrink(im: Image.Image) -> Image.Image:
    scale = MAX_SIDE / max(im.size)
    if scale >= 1:
        return im
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.BOX)


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256 bits (most significant first) as ThreatExchange's 64 hex digits."""
    return np.packbits(np.asarray(bits, np.uint8)).tobytes().hex()


def hex_to_bytes(values: list[str]) -> np.ndarray:
    """Hex PDQ hashes as an (n, 32) uint8 array, the form the index stores."""
    if not values:
        return np.zeros((0, 32), np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), np.uint8).reshape(-1, 32)


class PDQSignal:
    """PDQ over the upright image and its 8 dihedral variants."""

    name: ClassVar[str] = "pdq"
    #: ThreatExchange's recommended match distance for PDQ (of 256 bits).
    threshold: ClassVar[int] = 31
    #: PDQ's own advice: below 50 the image is too flat for the hash to mean much.
    min_quality: ClassVar[int] = 50

    def hash_bytes(self, data: bytes) -> list[SignalValue]:
        """Eight values, variant 0 the image as shown to users."""
        pixels = load_image(data)
        hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(pixels))
        return [
            SignalValue(self.name, bits_to_hex(bits), variant, int(quality))
            for variant, bits in enumerate(hashes)
        ]

    def hash_file(self, path: str | Path) -> list[SignalValue]:
        return self.hash_bytes(Path(path).read_bytes())

    def validate(self, value: str) -> str:
        value = value.strip().lower()
        if not _HEX.match(value):
            raise InvalidSignal(f"not a PDQ hash (64 hex digits): {value[:80]!r}")
        return value

    def compare(self, a: str, b: str, threshold: int | None = None) -> Comparison:
        """Hamming distance on 256 bits; a match is at or below the threshold.

        >>> PDQSignal().compare("0" * 64, "0" * 63 + "7")
        Comparison(match=True, distance=3)
        """
        distance = hamming_hex(self.validate(a), self.validate(b))
        limit = self.threshold if threshold is None else threshold
        return Comparison(distance <= limit, distance)

    def examples(self) -> list[str]:
        # ThreatExchange's PDQ of bridge-1-original.jpg, and its all-zero edge case.
        return ["d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22", "0" * 64]

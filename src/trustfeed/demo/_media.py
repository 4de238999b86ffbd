"""Generated media for the demo world, so content security hashes real images.

Each video is represented by its cover frame: a PNG of a few coloured shapes
drawn from the item id (distinct per item: PDQ distances between items are
above 100 bits). Known-bad items are put in a hash bank *before* the upload;
half of them arrive altered (scaled to 75 %, 5 % brighter, JPEG): a
near-duplicate that PDQ still matches (within ~20 bits) and MD5 does not.
Random-noise covers would not do: PDQ of noise flips under re-encoding.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

SIZE = 192
SHAPES = 12
BAD_BANK = "demo-known-bad"


def _picture(item_id: int) -> Image.Image:
    """A diagonal gradient under a dozen shapes: enough structure for a PDQ quality ≥ 50
    on almost every item (flat pictures get low-quality hashes that banks ignore)."""
    rng = np.random.default_rng([7, item_id])
    ramp = np.linspace(0.0, 1.0, SIZE)
    start, end = (np.array(_colour(rng), np.float64) for _ in range(2))
    gradient = (np.add.outer(ramp, ramp) / 2)[..., None] * (end - start) + start
    picture = Image.fromarray(gradient.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(SHAPES):
        x, y = (int(v) for v in rng.integers(0, SIZE, 2))
        w, h = (int(v) for v in rng.integers(SIZE // 8, SIZE // 3, 2))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x, y, x + w, y + h], fill=_colour(rng))
    return picture


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(c) for c in rng.integers(0, 256, 3))
    return r, g, b


def pdq_of(media: bytes) -> tuple[str, int]:
    """The PDQ hash (as uploaded) and its quality."""
    from trustfeed.moderation import hash_media

    pdq = next(s for s in hash_media(media) if s.signal == "pdq" and s.variant == 0)
    return pdq.value, int(pdq.quality or 0)


def cover(item_id: int) -> bytes:
    """The item's cover frame as PNG bytes (deterministic)."""
    return _encode(_picture(item_id), "PNG")


def altered(item_id: int) -> bytes:
    """A near-duplicate of the cover: scaled to 75 %, 5 % brighter, JPEG quality 85."""
    picture = _picture(item_id).resize((SIZE * 3 // 4,) * 2, Image.Resampling.LANCZOS)
    picture = ImageEnhance.Brightness(picture).enhance(1.05)
    return _encode(picture, "JPEG", quality=85)


def _encode(picture: Image.Image, fmt: str, **options: int) -> bytes:
    out = io.BytesIO()
    picture.save(out, format=fmt, **options)
    return out.getvalue()

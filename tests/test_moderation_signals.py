"""Signals and the PDQ index, on ThreatExchange's PDQ test images in ../shared/moderation/pdq.

What the files are (looked at, not assumed): ``bridge-mods/`` is one photo
(``aaa-orig.jpg``) and 11 edits of it; ``dih/`` the photo's 8 rotations and
flips; ``exif-rotn/`` four *different* photos of one desk, each stored
sideways or upside down with an EXIF orientation tag (1, 3, 6, 8) — there is
no shared upright original to compare with, so the test checks that our hash
is the hash of the pixels turned as the tag says; ``needles.txt`` /
``haystack.txt`` are PDQ hex lists (each needle is within 31 bits of three
haystack hashes; half of them are also verbatim in the haystack).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from trustfeed.moderation import (
    DIHEDRAL,
    SIGNAL_TYPES,
    BruteForceIndex,
    InvalidSignal,
    MultiIndexHash,
    PDQSignal,
    UnsupportedMedia,
    build_index,
    hash_media,
    hex_to_bytes,
    load_hashes,
    save_hashes,
)

PDQ = PDQSignal()
#: The C++ reference hasher's output for dih/bridge-1-original.jpg (ThreatExchange pdq/ README).
REFERENCE_BRIDGE = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


@pytest.fixture(scope="module")
def pdq_dir(shared_dir: Path) -> Path:
    d = shared_dir / "moderation" / "pdq"
    if not d.is_dir():
        pytest.skip("needs ../shared/moderation/pdq")
    return d


def pdq_of(path: Path) -> list[str]:
    """The 8 dihedral PDQ hashes of a file (variant 0 = as shown)."""
    return [v.value for v in PDQ.hash_file(path)]


# ------------------------------------------------------------------ shared suite per signal type
@pytest.mark.parametrize("name", sorted(SIGNAL_TYPES))
def test_every_signal_type_keeps_its_contract(name: str) -> None:
    kind = SIGNAL_TYPES[name]
    for value in kind.examples():
        assert kind.validate(value.upper()) == value
        assert kind.compare(value, value).match
        assert kind.compare(value, value).distance == 0
    with pytest.raises(InvalidSignal):
        kind.validate("zz" * 16)
    assert kind.threshold >= 0
    assert kind.name == name


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_pdq_distance_is_a_metric(a: bytes, b: bytes) -> None:
    ha, hb = a.hex(), b.hex()
    d = PDQ.compare(ha, hb).distance
    assert d == PDQ.compare(hb, ha).distance
    assert (d == 0) == (ha == hb)
    assert d == int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def test_exact_digests_hash_the_bytes() -> None:
    values = {v.signal: v.value for v in SIGNAL_TYPES["md5"].hash_bytes(b"abc")}
    assert values["md5"] == hashlib.md5(b"abc").hexdigest()
    assert SIGNAL_TYPES["sha256"].hash_bytes(b"abc")[0].value == hashlib.sha256(b"abc").hexdigest()
    assert not SIGNAL_TYPES["md5"].compare(hashlib.md5(b"a").hexdigest(), values["md5"]).match


@pytest.mark.parametrize("data", [b"", b"not an image", b"\xff\xd8\xff\xe0truncated jpeg"])
def test_non_images_are_refused_clearly(data: bytes) -> None:
    with pytest.raises(UnsupportedMedia):
        hash_media(data)


def test_flat_image_has_low_quality() -> None:
    """PDQ says a flat image hashes to noise; such hashes are kept but never matched."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 120, 120)).save(buf, "PNG")
    values = PDQ.hash_bytes(buf.getvalue())
    assert all(v.quality is not None and v.quality < PDQ.min_quality for v in values)


# ------------------------------------------------------------------ the ThreatExchange images
@pytest.mark.shared
def test_original_is_close_to_the_reference_hasher(pdq_dir: Path) -> None:
    ours = PDQ.hash_file(pdq_dir / "dih" / "bridge-1-original.jpg")[0]
    assert ours.quality == 100
    # Pillow decodes and our fixed 512 px downscale differ from the C++ tool's CImg path.
    assert PDQ.compare(ours.value, REFERENCE_BRIDGE).distance <= 10


#: The 11 bridge edits; every one is within 31 bits of the original (none left uncaught).
BRIDGE_EDITS = [
    "blur-a-little.jpg",
    "blur-a-lot.jpg",
    "high-contrast.jpg",
    "high-saturation.jpg",
    "sharpen-a-little.jpg",
    "sharpen-a-lot.jpg",
    "shrink-a-little.jpg",
    "shrink-a-lot.jpg",
    "square-128x128.jpg",
    "square-256x256.jpg",
    "square-512x512.jpg",
]


@pytest.mark.shared
@pytest.mark.parametrize("name", BRIDGE_EDITS)
def test_each_bridge_edit_matches_the_original(pdq_dir: Path, name: str) -> None:
    original = pdq_of(pdq_dir / "bridge-mods" / "aaa-orig.jpg")[0]
    edited = pdq_of(pdq_dir / "bridge-mods" / name)[0]
    assert PDQ.compare(original, edited).match, PDQ.compare(original, edited)


def _synthetic_edit(path: Path, edit: str) -> bytes:
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        if edit == "crop-center-half":
            im = im.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4))
        elif edit == "caption-bar":
            bar = Image.new("RGB", (w, h + h // 3), (255, 255, 255))
            bar.paste(im, (0, 0))
            im = bar
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        return buf.getvalue()


@pytest.mark.shared
@pytest.mark.parametrize("edit", ["crop-center-half", "caption-bar"])
def test_crops_and_caption_bars_are_not_caught(pdq_dir: Path, edit: str) -> None:
    """Known gap, pinned so it cannot be mistaken for coverage: PDQ is a global
    hash, so cropping to the central half or adding a white caption bar a third
    of the image's height moves the hash far past 31 bits. Neither the set
    nor the dihedral check catches these; they need another signal (or review)."""
    path = pdq_dir / "bridge-mods" / "aaa-orig.jpg"
    original = pdq_of(path)
    edited = [v.value for v in PDQ.hash_bytes(_synthetic_edit(path, edit))]
    closest = min(PDQ.compare(o, edited[0]).distance for o in original)
    assert closest > PDQ.threshold


@pytest.mark.shared
@pytest.mark.parametrize("index", range(1, 8))
def test_dihedral_variants_match_only_through_the_dihedral_check(pdq_dir: Path, index: int) -> None:
    files = sorted((pdq_dir / "dih").iterdir())
    original = pdq_of(files[0])
    turned = pdq_of(files[index])[0]
    assert DIHEDRAL[index] in files[index].name.replace("flipx", "flip-x").replace(
        "flipy", "flip-y"
    )
    # Straight comparison misses it …
    assert not PDQ.compare(original[0], turned).match
    # … the variant of the original turned the same way catches it.
    assert PDQ.compare(original[index], turned).match


_EXIF_TURN = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_270,
    8: Image.Transpose.ROTATE_90,
}


@pytest.mark.shared
@pytest.mark.parametrize("tag", [1, 3, 6, 8])
def test_exif_rotated_photos_are_hashed_upright(pdq_dir: Path, tag: int) -> None:
    path = pdq_dir / "exif-rotn" / f"exif-rotn-{tag}.jpg"
    with Image.open(path) as im:
        assert im.getexif().get(0x0112) == tag
        im.draft("RGB", (512, 512))
        raw = im.convert("RGB")
    turn = _EXIF_TURN[tag]
    upright = raw if turn is None else raw.transpose(turn)
    buf, stored = io.BytesIO(), io.BytesIO()
    upright.save(buf, "PNG")  # no EXIF: the pixels as a viewer shows them
    raw.save(stored, "PNG")  # no EXIF either: the pixels as stored in the file
    ours = pdq_of(path)[0]
    assert PDQ.compare(ours, pdq_of_bytes(buf.getvalue())).distance <= 8
    if turn is not None:  # ignoring the tag would have hashed a different picture
        assert PDQ.compare(ours, pdq_of_bytes(stored.getvalue())).distance > PDQ.threshold


def pdq_of_bytes(data: bytes) -> str:
    return PDQ.hash_bytes(data)[0].value


# ------------------------------------------------------------------ the index
def _read_hashes(path: Path) -> list[str]:
    return [line.split(",")[0].strip() for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.shared
@pytest.mark.parametrize("kind", [BruteForceIndex, MultiIndexHash])
def test_index_finds_every_needle_in_the_haystack(pdq_dir: Path, kind: type) -> None:
    needles = hex_to_bytes(_read_hashes(pdq_dir / "needles.txt"))
    hay = _read_hashes(pdq_dir / "haystack.txt")
    index = kind(hex_to_bytes(hay), np.arange(len(hay)))
    for needle in needles:
        hits = index.search(needle, 31)
        expected = {i: PDQ.compare(h, needle.tobytes().hex()).distance for i, h in enumerate(hay)}
        expected = {i: d for i, d in expected.items() if d <= 31}
        assert expected, "every needle has a haystack neighbour"
        assert dict(zip(hits.ids.tolist(), hits.distances.tolist(), strict=True)) == expected


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0, 5, 15, 16, 31, 32, 40, 47, 60]))
def test_multi_index_hash_equals_brute_force(seed: int, radius: int) -> None:
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    # Queries near stored hashes (flip a few bits) and some at random.
    queries = stored[rng.integers(0, 300, 10)].copy()
    bits = np.unpackbits(queries, axis=1)
    flip = rng.random(bits.shape) < rng.uniform(0, 0.2)
    queries = np.vstack([np.packbits(bits ^ flip, axis=1), rng.integers(0, 256, (3, 32))])
    ids = rng.permutation(10_000)[:300]
    fast, slow = MultiIndexHash(stored, ids), BruteForceIndex(stored, ids)
    for q in queries.astype(np.uint8):
        a, b = fast.search(q, radius), slow.search(q, radius)
        assert sorted(zip(a.ids.tolist(), a.distances.tolist(), strict=True)) == sorted(
            zip(b.ids.tolist(), b.distances.tolist(), strict=True)
        )


def test_index_rows_survive_save_and_reload(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    hashes, ids = rng.integers(0, 256, (50, 32), dtype=np.uint8), np.arange(50) * 7
    save_hashes(tmp_path / "bank.npz", hashes, ids)
    again_h, again_i = load_hashes(tmp_path / "bank.npz")
    assert (again_h == hashes).all() and (again_i == ids).all()
    a, b = build_index(hashes, ids), build_index(again_h, again_i)
    assert a.search(hashes[3], 31).ids.tolist() == b.search(hashes[3], 31).ids.tolist() == [21]

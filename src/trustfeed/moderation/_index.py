"""Radius search over 256-bit PDQ hashes: a reference scan and a multi-index hash.

Why not FAISS here (ARCHITECTURE lists it for ANN): measured on 1M random
hashes, 2 cores, radius 31 — ``IndexBinaryMultiHash`` took 335 MB and served
~1,100 lookups/s batched, ~500/s one at a time; ``IndexBinaryFlat`` 31 MB but
~770 single lookups/s. The multi-index hash below (Norouzi et al., "Fast
search in Hamming space with multi-index hashing") serves ~2,000 single
lookups/s on 2 threads in ~107 MB with plain numpy; ``benchmarks/bench_moderation.py``
repeats the comparison. Both classes answer exactly the same (a test checks).

Multi-index hashing: split each hash into 16 chunks of 16 bits. If two hashes
are within distance r, some chunk differs in at most ⌊r/16⌋ bits (pigeonhole),
so probing every chunk's buckets within that many flips finds every true
match; each candidate is then verified by a full popcount.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Protocol

import numpy as np

from trustfeed.moderation._errors import ModerationError

_CHUNKS = 16
_CHUNK_BITS = 16
#: Above this many flips per chunk, probing costs more than scanning.
_MAX_FLIPS = 2
#: Format of saved index files (plain ``.npz`` arrays, never pickle).
INDEX_FORMAT = 1


@dataclass(frozen=True)
class Hits:
    """The stored hashes within the radius of one query: their ids and distances."""

    ids: np.ndarray
    distances: np.ndarray


class HammingIndex(Protocol):
    """Fixed set of (id, 256-bit hash) rows answering radius queries."""

    def __len__(self) -> int: ...

    def search(self, query: np.ndarray, radius: int) -> Hits:
        """Every stored hash at Hamming distance ≤ ``radius`` from ``query`` (32 uint8)."""
        ...


def _check(hashes: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hashes = np.ascontiguousarray(hashes, np.uint8)
    ids = np.ascontiguousarray(ids, np.int64)
    if hashes.ndim != 2 or hashes.shape[1] != 32 or len(ids) != len(hashes):
        raise ModerationError(f"need (n, 32) uint8 hashes and n ids, got {hashes.shape}")
    return hashes, ids


def _distances(stored: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Popcount of XOR over four 64-bit words per hash."""
    q = np.ascontiguousarray(query, np.uint8).view(np.uint64)
    return np.bitwise_count(stored ^ q).sum(axis=1, dtype=np.int64)


class BruteForceIndex:
    """The reference: compare the query with every stored hash."""

    def __init__(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        hashes, self.ids = _check(hashes, ids)
        self._words = hashes.view(np.uint64)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: np.ndarray, radius: int) -> Hits:
        d = _distances(self._words, query)
        keep = np.flatnonzero(d <= radius)
        return Hits(self.ids[keep], d[keep])


def _flip_masks(flips: int) -> np.ndarray:
    """XOR masks of every way to flip at most ``flips`` of a chunk's 16 bits."""
    masks = [0]
    for k in range(1, flips + 1):
        masks += [sum(1 << b for b in bits) for bits in combinations(range(_CHUNK_BITS), k)]
    return np.array(masks, np.int64)


class MultiIndexHash:
    """Exact radius search that probes 16 chunk tables instead of scanning.

    Memory: the hashes (32 B each) plus one uint32 position per hash per
    chunk (64 B) — about 100 MB for a million hashes.
    """

    def __init__(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        hashes, self.ids = _check(hashes, ids)
        self._words = hashes.view(np.uint64)
        n = len(hashes)
        chunks = hashes.view(">u2")  # (n, 16) big-endian 16-bit chunks
        self._order = np.empty(_CHUNKS * n, np.uint32)
        self._starts = np.empty((_CHUNKS, (1 << _CHUNK_BITS) + 1), np.int64)
        for c in range(_CHUNKS):
            col = chunks[:, c]
            self._order[c * n : (c + 1) * n] = np.argsort(col, kind="stable")
            counts = np.bincount(col, minlength=1 << _CHUNK_BITS)
            self._starts[c, 0] = c * n
            self._starts[c, 1:] = c * n + np.cumsum(counts)
        self._masks = {f: _flip_masks(f) for f in range(_MAX_FLIPS + 1)}
        self._fallback = BruteForceIndex(hashes, self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's arrays (what the benchmark reports)."""
        return self._words.nbytes + self._order.nbytes + self._starts.nbytes + self.ids.nbytes

    def search(self, query: np.ndarray, radius: int) -> Hits:
        flips = radius // _CHUNKS
        if flips > _MAX_FLIPS or len(self.ids) == 0:
            return self._fallback.search(query, radius)
        rows = self._candidates(np.asarray(query, np.uint8), self._masks[flips])
        d = _distances(self._words[rows], query)
        keep = d <= radius
        found, first = np.unique(rows[keep], return_index=True)
        return Hits(self.ids[found], d[keep][first])

    def _candidates(self, query: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Row numbers in every probed bucket (with repeats; verified afterwards)."""
        chunks = query.view(">u2").astype(np.int64)
        probes = chunks[:, None] ^ masks[None, :]
        table = np.arange(_CHUNKS)[:, None]
        begin = self._starts[table, probes].ravel()
        length = self._starts[table, probes + 1].ravel() - begin
        total = int(length.sum())
        offsets = np.repeat(begin - (np.cumsum(length) - length), length)
        return self._order[offsets + np.arange(total)].astype(np.int64)


def build_index(hashes: np.ndarray, ids: np.ndarray) -> HammingIndex:
    """The index to serve with: brute force while small, multi-index hashing beyond."""
    if len(ids) < 4096:
        return BruteForceIndex(hashes, ids)
    return MultiIndexHash(hashes, ids)


def save_hashes(path: str | Path, hashes: np.ndarray, ids: np.ndarray) -> None:
    """Write an index's rows as a plain ``.npz`` (no pickle); reload with :func:`load_hashes`."""
    hashes, ids = _check(hashes, ids)
    np.savez(Path(path), format=np.array([INDEX_FORMAT]), hashes=hashes, ids=ids)


def load_hashes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The (hashes, ids) saved by :func:`save_hashes`; pass them to :func:`build_index`."""
    with np.load(Path(path), allow_pickle=False) as data:
        if int(data["format"][0]) != INDEX_FORMAT:
            raise ModerationError(f"index file format {int(data['format'][0])} is not supported")
        return _check(data["hashes"], data["ids"])

"""A collisionless embedding table, after ByteDance's Monolith (Liu et al., 2022).

Hashing ids into a fixed number of rows makes unrelated users and items share a
vector, and the damage grows with the catalogue. Here every live 64-bit id owns
its row: an open-addressing hash map (linear probing, backward-shift deletion)
stores the *full* key in each slot and compares keys exactly, so the hash only
chooses where to start looking and two ids can never be confused.

Monolith's two memory controls are kept:

* **Admission by frequency.** An id gets a row only once it has been observed
  ``admit_after`` times; until then only its pending count and last-seen time
  are kept (16 bytes in a pool, no vector). Pending ids expire under the same
  ``expire_after`` rule as admitted ones, so with expiry on, the pending pool is
  bounded by the number of distinct ids seen within one expiry window. With
  ``expire_after=None`` and ``admit_after > 1`` it is not bounded: every id
  ever seen once is remembered.
* **Expiry.** ``expire(now)`` drops ids unseen for more than ``expire_after``
  seconds; their rows go to a free list and later ids reuse them (lowest row
  first), with a fresh vector drawn from the table's own generator.

The probing loops are numba kernels; everything around them is vectorised
numpy. A table is not safe to share between threads without a lock.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from trustfeed.recommend._base import RecommendError

__all__ = ["FORMAT_VERSION", "CollisionlessTable", "TableFormatError", "TableInputError"]

#: Version of the ``.npz`` layout written by :meth:`CollisionlessTable.save`.
FORMAT_VERSION = 1
_FORMAT_NAME = "trustfeed.CollisionlessTable"

_EMPTY = np.iinfo(np.int64).min  # slot value of an empty slot; rows are >= 0, pending < 0
_INT64_MAX = np.iinfo(np.int64).max
_MIN_SLOTS = 1024
_MIN_ROWS = 64


class TableInputError(RecommendError, ValueError):
    """Ids, timestamps or settings given to a :class:`CollisionlessTable` are invalid."""


class TableFormatError(RecommendError, ValueError):
    """A saved table cannot be read: not a table, unknown format version, or damaged."""


# --------------------------------------------------------------------------- kernels
# The map is an (n_slots, 2) int64 array: column 0 the key, column 1 the value
# (row >= 0, pending entry -(p + 1), or _EMPTY), so one probe touches one cache line.
# ``state`` holds the counters the kernels update in place:
_USED, _NROWS, _NFREE, _NPEND, _NPFREE, _NNEW = range(6)


@numba.njit(inline="always")
def _mix(key):
    # splitmix64 finaliser: keys that differ only in high bits spread over all slots.
    x = np.uint64(key)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return np.int64(x)


@numba.njit(cache=True, nogil=True)
def _find(slots, keys, out):
    mask = slots.shape[0] - 1
    for i in range(keys.shape[0]):
        k = keys[i]
        h = _mix(k) & mask
        out[i] = _EMPTY
        while slots[h, 1] != _EMPTY:
            if slots[h, 0] == k:
                out[i] = slots[h, 1]
                break
            h = (h + 1) & mask


@numba.njit(cache=True, nogil=True)
def _insert(slots, keys, vals):
    # Only for keys known to be absent (rehash, load).
    mask = slots.shape[0] - 1
    for i in range(keys.shape[0]):
        h = _mix(keys[i]) & mask
        while slots[h, 1] != _EMPTY:
            h = (h + 1) & mask
        slots[h, 0] = keys[i]
        slots[h, 1] = vals[i]


@numba.njit(cache=True, nogil=True)
def _delete(slots, keys):
    # Backward-shift deletion: no tombstones, so probe chains never degrade.
    mask = slots.shape[0] - 1
    removed = 0
    for n in range(keys.shape[0]):
        k = keys[n]
        i = _mix(k) & mask
        while slots[i, 1] != _EMPTY and slots[i, 0] != k:
            i = (i + 1) & mask
        if slots[i, 1] == _EMPTY:
            continue
        removed += 1
        j = i
        while True:
            j = (j + 1) & mask
            if slots[j, 1] == _EMPTY:
                break
            home = _mix(slots[j, 0]) & mask
            # The entry at j may move to the hole at i unless its home lies in (i, j].
            stays = (i < home <= j) if i <= j else (home > i or home <= j)
            if stays:
                continue
            slots[i, 0] = slots[j, 0]
            slots[i, 1] = slots[j, 1]
            i = j
        slots[i, 1] = _EMPTY
    return removed


@numba.njit(cache=True, nogil=True)
def _observe(slots, max_used, ids, ts, admit_after, rows, pend, state, out, new_rows, start):
    """Process ``ids[start:]``; return where it stopped (``len(ids)`` when done).

    It stops *before* touching an id that needs a slot, row or pending entry
    the arrays have no room for, so the caller can grow them and resume.
    ``rows`` = (row_id, row_count, row_last, row_live, free_rows),
    ``pend`` = (pend_id, pend_count, pend_last, pend_live, pend_free).
    """
    row_id, row_count, row_last, row_live, free_rows = rows
    pend_id, pend_count, pend_last, pend_live, pend_free = pend
    mask = slots.shape[0] - 1
    for i in range(start, ids.shape[0]):
        k = ids[i]
        t = ts[i]
        p = -1
        h = _mix(k) & mask
        while slots[h, 1] != _EMPTY and slots[h, 0] != k:
            h = (h + 1) & mask
        v = slots[h, 1]
        if v >= 0:  # admitted: the common case
            row_count[v] += 1
            row_last[v] = max(row_last[v], t)
            out[i] = v
            continue
        count = 1 if v == _EMPTY else pend_count[-v - 1] + 1
        row_full = state[_NFREE] == 0 and state[_NROWS] == row_id.shape[0]
        if count >= admit_after and row_full:
            return i
        if v == _EMPTY:
            if state[_USED] >= max_used:
                return i
            if count < admit_after and state[_NPFREE] == 0 and state[_NPEND] == pend_id.shape[0]:
                return i
            slots[h, 0] = k
            state[_USED] += 1
            last = t
        else:
            p = -v - 1
            last = max(pend_last[p], t)
        if count < admit_after:
            if v == _EMPTY:
                if state[_NPFREE] > 0:
                    state[_NPFREE] -= 1
                    p = pend_free[state[_NPFREE]]
                else:
                    p = state[_NPEND]
                    state[_NPEND] += 1
                pend_id[p] = k
                pend_live[p] = True
                slots[h, 1] = -(p + 1)
            pend_count[p] = count
            pend_last[p] = last
            out[i] = -1
            continue
        if v != _EMPTY:  # leaves the pending pool
            pend_live[p] = False
            pend_free[state[_NPFREE]] = p
            state[_NPFREE] += 1
        if state[_NFREE] > 0:
            state[_NFREE] -= 1
            r = free_rows[state[_NFREE]]
        else:
            r = state[_NROWS]
            state[_NROWS] += 1
        row_id[r] = k
        row_count[r] = count
        row_last[r] = last
        row_live[r] = True
        slots[h, 1] = r
        out[i] = r
        new_rows[state[_NNEW]] = r
        state[_NNEW] += 1
    return ids.shape[0]


# --------------------------------------------------------------------------- input checks
def _as_ids(ids: npt.ArrayLike, name: str = "ids") -> np.ndarray:
    try:
        arr = np.asarray(ids)
    except (OverflowError, ValueError) as exc:
        raise TableInputError(f"{name} must be 64-bit integers: {exc}") from exc
    if arr.ndim != 1:
        raise TableInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.empty(0, np.int64)
    if arr.dtype.kind == "u":
        if int(arr.max()) > _INT64_MAX:
            raise TableInputError(f"{name} must fit in int64; got {int(arr.max())}")
    elif arr.dtype.kind != "i":
        raise TableInputError(f"{name} must be integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _as_times(timestamps: npt.ArrayLike, n: int) -> np.ndarray:
    arr = np.asarray(timestamps)
    if arr.dtype.kind not in "iuf":
        raise TableInputError(f"timestamps must be numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    elif arr.shape != (n,):
        raise TableInputError(f"got {n} ids but timestamps of shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise TableInputError("timestamps must be finite (no NaN or inf)")
    return np.ascontiguousarray(arr)


def _check_config(dim: Any, admit_after: Any, expire_after: Any, init_scale: Any) -> None:
    if not isinstance(dim, int | np.integer) or isinstance(dim, bool) or dim < 0:
        raise TableInputError(f"dim must be an integer >= 0, got {dim!r}")
    if (
        not isinstance(admit_after, int | np.integer)
        or isinstance(admit_after, bool)
        or admit_after < 1
    ):
        raise TableInputError(f"admit_after must be an integer >= 1, got {admit_after!r}")
    if expire_after is not None and not (
        isinstance(expire_after, int | float) and math.isfinite(expire_after) and expire_after >= 0
    ):
        raise TableInputError(
            f"expire_after must be None or a finite number >= 0, got {expire_after!r}"
        )
    if not (isinstance(init_scale, int | float) and math.isfinite(init_scale) and init_scale >= 0):
        raise TableInputError(f"init_scale must be a finite number >= 0, got {init_scale!r}")


def _grown(arr: np.ndarray, size: int, fill: Any = 0) -> np.ndarray:
    new = np.full((size, *arr.shape[1:]), fill, dtype=arr.dtype)
    new[: len(arr)] = arr
    return new


# --------------------------------------------------------------------------- the table
class CollisionlessTable:
    """Rows of float32 vectors for 64-bit ids, one row per live id, never shared.

    >>> t = CollisionlessTable(dim=2, admit_after=2, expire_after=60.0, seed=0)
    >>> t.observe([7, 7, -1], 0.0).tolist()   # 7 admitted on its 2nd sighting
    [-1, 0, -1]
    >>> t.rows([7, -1, 2**63 - 1]).tolist()
    [0, -1, -1]
    >>> t.observe([-1], 100.0).tolist(), t.vectors.shape
    ([1], (2, 2))
    >>> rows, ids = t.expire(now=100.0)       # 7 last seen at 0.0, more than 60 s ago
    >>> rows.tolist(), ids.tolist(), len(t), 7 in t
    ([0], [7], 1, False)
    """

    def __init__(
        self,
        dim: int,
        admit_after: int = 1,
        expire_after: float | None = None,
        init_scale: float = 0.01,
        seed: int = 0,
    ) -> None:
        _check_config(dim, admit_after, expire_after, init_scale)
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise TableInputError(f"seed must be an integer >= 0, got {seed!r}")
        self.dim = int(dim)
        self.admit_after = int(admit_after)
        self.expire_after = None if expire_after is None else float(expire_after)
        self.init_scale = float(init_scale)
        self.seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self._slots = np.full((_MIN_SLOTS, 2), _EMPTY, np.int64)
        self._state = np.zeros(6, np.int64)
        self._alloc_rows(_MIN_ROWS)
        self._alloc_pending(0)

    # ---------------------------------------------------------------- storage
    def _alloc_rows(self, n: int) -> None:
        self._row_id = np.zeros(n, np.int64)
        self._row_count = np.zeros(n, np.int64)
        self._row_last = np.zeros(n, np.float64)
        self._row_live = np.zeros(n, np.bool_)
        self._free_rows = np.zeros(n, np.int64)
        self._vectors = np.zeros((n, self.dim), np.float32)

    def _alloc_pending(self, n: int) -> None:
        self._pend_id = np.zeros(n, np.int64)
        self._pend_count = np.zeros(n, np.int64)
        self._pend_last = np.zeros(n, np.float64)
        self._pend_live = np.zeros(n, np.bool_)
        self._pend_free = np.zeros(n, np.int64)

    def _row_arrays(self) -> tuple[np.ndarray, ...]:
        return (self._row_id, self._row_count, self._row_last, self._row_live, self._free_rows)

    def _pend_arrays(self) -> tuple[np.ndarray, ...]:
        return (self._pend_id, self._pend_count, self._pend_last, self._pend_live, self._pend_free)

    def _grow_rows(self) -> None:
        n = max(_MIN_ROWS, 2 * len(self._row_id))
        self._row_id, self._row_count, self._row_last, self._row_live, self._free_rows = (
            _grown(a, n) for a in self._row_arrays()
        )
        self._vectors = _grown(self._vectors, n)

    def _grow_pending(self) -> None:
        n = max(_MIN_ROWS, 2 * len(self._pend_id))
        self._pend_id, self._pend_count, self._pend_last, self._pend_live, self._pend_free = (
            _grown(a, n) for a in self._pend_arrays()
        )

    def _rehash(self, n_slots: int) -> None:
        old = self._slots
        used = old[:, 1] != _EMPTY
        self._slots = np.full((n_slots, 2), _EMPTY, np.int64)
        _insert(self._slots, np.ascontiguousarray(old[used, 0]), np.ascontiguousarray(old[used, 1]))

    def _max_used(self) -> int:
        return len(self._slots) // 2  # load factor <= 1/2 keeps linear probes short

    # ---------------------------------------------------------------- updates
    def observe(self, ids: npt.ArrayLike, timestamps: npt.ArrayLike) -> np.ndarray:
        """Count one sighting per element (repeats count), admit, and update last-seen.

        ``timestamps`` is one number or one per id (seconds); last-seen keeps the
        latest, so late events never make an id look older. Returns the row of
        each element *after* its own sighting, -1 while the id is not admitted.
        Newly admitted rows get fresh vectors; fetch :attr:`vectors` again after
        this call, since growing reallocates it.
        """
        keys = _as_ids(ids)
        ts = _as_times(timestamps, len(keys))
        out = np.empty(len(keys), np.int64)
        new_rows = np.empty(len(keys), np.int64)
        self._state[_NNEW] = 0
        i = 0
        while True:
            i = _observe(
                self._slots, self._max_used(), keys, ts, self.admit_after,
                self._row_arrays(), self._pend_arrays(), self._state, out, new_rows, i,
            )  # fmt: skip
            if i == len(keys):
                break
            self._make_room()
        fresh = new_rows[: self._state[_NNEW]]
        if len(fresh) and self.dim:
            draw = self._rng.standard_normal((len(fresh), self.dim), dtype=np.float32)
            self._vectors[fresh] = draw * np.float32(self.init_scale)
        return out

    def _make_room(self) -> None:
        st = self._state
        if st[_USED] >= self._max_used():
            self._rehash(2 * len(self._slots))
        if st[_NFREE] == 0 and st[_NROWS] == len(self._row_id):
            self._grow_rows()
        if self.admit_after > 1 and st[_NPFREE] == 0 and st[_NPEND] == len(self._pend_id):
            self._grow_pending()

    def expire(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Forget ids (admitted and pending) last seen more than ``expire_after`` before ``now``.

        Returns ``(rows, ids)`` of the freed rows, ascending by row, so the owner
        can reset its own per-row state; later ids reuse those rows.
        """
        if not (isinstance(now, int | float | np.number) and math.isfinite(now)):
            raise TableInputError(f"now must be a finite number, got {now!r}")
        if self.expire_after is None:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        n, np_ = int(self._state[_NROWS]), int(self._state[_NPEND])
        rows = np.flatnonzero(self._row_live[:n] & ((now - self._row_last[:n]) > self.expire_after))
        pending = np.flatnonzero(
            self._pend_live[:np_] & ((now - self._pend_last[:np_]) > self.expire_after)
        )
        return self._free(rows, pending)

    def remove(self, ids: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Forget these ids now (admitted or pending), e.g. a user's erasure.

        Returns ``(rows, ids)`` of the freed admitted rows, like :meth:`expire`;
        unknown ids are ignored.
        """
        keys = np.unique(_as_ids(ids))
        val = np.empty(len(keys), np.int64)
        _find(self._slots, keys, val)
        rows = np.sort(val[val >= 0])
        pending = np.sort(-val[(val < 0) & (val != _EMPTY)] - 1)
        return self._free(rows, pending)

    def _free(self, rows: np.ndarray, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        st = self._state
        ids = self._row_id[rows]
        removed = _delete(self._slots, np.concatenate([ids, self._pend_id[pending]]))
        st[_USED] -= removed
        self._row_live[rows] = False
        self._row_count[rows] = 0
        self._free_rows[st[_NFREE] : st[_NFREE] + len(rows)] = rows[::-1]  # lowest reused first
        st[_NFREE] += len(rows)
        self._pend_live[pending] = False
        self._pend_count[pending] = 0
        self._pend_free[st[_NPFREE] : st[_NPFREE] + len(pending)] = pending[::-1]
        st[_NPFREE] += len(pending)
        return rows.astype(np.int64), ids

    # ---------------------------------------------------------------- lookups
    def rows(self, ids: npt.ArrayLike) -> np.ndarray:
        """Row of each id, -1 where it is unknown or not admitted yet; changes nothing."""
        keys = _as_ids(ids)
        out = np.empty(len(keys), np.int64)
        _find(self._slots, keys, out)
        return np.where(out >= 0, out, -1)

    def observed_counts(self, ids: npt.ArrayLike) -> np.ndarray:
        """Sightings of each id still remembered (pending or admitted), 0 if none."""
        keys = _as_ids(ids)
        val = np.empty(len(keys), np.int64)
        _find(self._slots, keys, val)
        counts = np.zeros(len(keys), np.int64)
        admitted = val >= 0
        pending = (val < 0) & (val != _EMPTY)
        counts[admitted] = self._row_count[val[admitted]]
        counts[pending] = self._pend_count[-val[pending] - 1]
        return counts

    def ids_at(self, rows: npt.ArrayLike) -> np.ndarray:
        """The id living at each row; a row that holds no live id is an error."""
        r = _as_ids(rows, "rows")
        n = int(self._state[_NROWS])
        if ((r < 0) | (r >= n)).any() or not self._row_live[r].all():
            raise TableInputError("ids_at got rows that hold no live id")
        return self._row_id[r]

    def ids_or(self, rows: npt.ArrayLike, fill: int) -> np.ndarray:
        """The id living at each row, ``fill`` where a row holds none; never raises."""
        r = _as_ids(rows, "rows")
        inside = (r >= 0) & (r < int(self._state[_NROWS]))
        safe = np.where(inside, r, 0)
        return np.where(inside & self._row_live[safe], self._row_id[safe], fill)

    def live_rows(self) -> np.ndarray:
        """Rows that hold a live id, ascending."""
        return np.flatnonzero(self._row_live[: self._state[_NROWS]]).astype(np.int64)

    def live_ids(self) -> np.ndarray:
        """Ids that hold a row, in row order."""
        return self._row_id[self.live_rows()]

    def pending(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, counts, last_seen)`` of ids seen but not admitted yet, sorted by id."""
        live = np.flatnonzero(self._pend_live[: self._state[_NPEND]])
        order = np.argsort(self._pend_id[live], kind="stable")
        sel = live[order]
        return self._pend_id[sel], self._pend_count[sel], self._pend_last[sel]

    @property
    def n_rows(self) -> int:
        """Rows in use or on the free list: the length of :attr:`vectors`."""
        return int(self._state[_NROWS])

    @property
    def vectors(self) -> np.ndarray:
        """``(n_rows, dim)`` float32 view; row r belongs to the id at row r. Writable."""
        return self._vectors[: self.n_rows]

    @property
    def counts(self) -> np.ndarray:
        """Read-only ``(n_rows,)`` sightings per row (0 on a free row)."""
        view = self._row_count[: self.n_rows]
        view.flags.writeable = False
        return view

    @property
    def last_seen(self) -> np.ndarray:
        """Read-only ``(n_rows,)`` latest timestamp per row."""
        view = self._row_last[: self.n_rows]
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return int(self._state[_NROWS] - self._state[_NFREE])

    def __contains__(self, id_: object) -> bool:
        if not isinstance(id_, int | np.integer) or isinstance(id_, bool):
            return False
        if not -(2**63) <= int(id_) <= _INT64_MAX:
            return False
        return bool(self.rows(np.array([id_], np.int64))[0] >= 0)

    def __repr__(self) -> str:
        return (
            f"CollisionlessTable(dim={self.dim}, admit_after={self.admit_after}, "
            f"expire_after={self.expire_after}, live={len(self)}, n_rows={self.n_rows})"
        )

    # ---------------------------------------------------------------- persistence
    def _header(self) -> dict[str, Any]:
        return {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "config": {
                "dim": self.dim,
                "admit_after": self.admit_after,
                "expire_after": self.expire_after,
                "init_scale": self.init_scale,
                "seed": self.seed,
            },
            "rng_state": self._rng.bit_generator.state,
            "n_rows": self.n_rows,
        }

    def save(self, path: str | Path) -> None:
        """Write one ``.npz`` (atomically: a temporary file, then rename)."""
        n, st = self.n_rows, self._state
        ids, counts, last = self.pending()
        arrays = {
            "header": np.array(json.dumps(self._header())),
            "row_id": self._row_id[:n],
            "row_count": self._row_count[:n],
            "row_last": self._row_last[:n],
            "row_live": self._row_live[:n],
            "free_rows": self._free_rows[: st[_NFREE]],
            "vectors": self._vectors[:n],
            "pend_id": ids,
            "pend_count": counts,
            "pend_last": last,
        }
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> CollisionlessTable:
        """Read a table written by :meth:`save`; never unpickles."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
            header = json.loads(str(data.pop("header")))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise TableFormatError(f"{path}: not a saved CollisionlessTable ({exc})") from exc
        if not isinstance(header, dict) or header.get("format") != _FORMAT_NAME:
            raise TableFormatError(f"{path}: not a saved CollisionlessTable")
        if header.get("version") != FORMAT_VERSION:
            raise TableFormatError(
                f"{path}: unknown CollisionlessTable format version {header.get('version')!r}"
                f" (this code reads version {FORMAT_VERSION})"
            )
        try:
            table = cls(**header["config"])
            table._restore(header, data)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise TableFormatError(f"{path}: damaged CollisionlessTable ({exc})") from exc
        return table

    def _restore(self, header: dict[str, Any], data: dict[str, np.ndarray]) -> None:
        n = int(header["n_rows"])
        live = data["row_live"].astype(np.bool_)
        free = data["free_rows"].astype(np.int64)
        if data["vectors"].shape != (n, self.dim) or len(live) != n:
            raise ValueError("row arrays do not match n_rows and dim")
        if sorted(free.tolist()) != np.flatnonzero(~live).tolist():
            raise ValueError("free list does not match the dead rows")
        self._alloc_rows(max(_MIN_ROWS, 1 << max(n - 1, 0).bit_length()))
        self._row_id[:n], self._row_count[:n] = data["row_id"], data["row_count"]
        self._row_last[:n], self._row_live[:n] = data["row_last"], live
        self._vectors[:n] = data["vectors"]
        self._free_rows[: len(free)] = free
        n_pend = len(data["pend_id"])
        self._alloc_pending(max(_MIN_ROWS, 1 << max(n_pend - 1, 0).bit_length()) if n_pend else 0)
        self._pend_id[:n_pend], self._pend_count[:n_pend] = data["pend_id"], data["pend_count"]
        self._pend_last[:n_pend], self._pend_live[:n_pend] = data["pend_last"], True
        self._state[:] = [0, n, len(free), n_pend, 0, 0]
        rows = np.flatnonzero(live)
        keys = np.concatenate([self._row_id[rows], self._pend_id[:n_pend]])
        vals = np.concatenate([rows, -(np.arange(n_pend, dtype=np.int64) + 1)])
        if len(np.unique(keys)) != len(keys):
            raise ValueError("an id appears twice")
        n_slots = _MIN_SLOTS
        while len(keys) >= n_slots // 2:
            n_slots *= 2
        self._slots = np.full((n_slots, 2), _EMPTY, np.int64)
        _insert(self._slots, keys, vals)
        self._state[_USED] = len(keys)
        state = header["rng_state"]
        if state.get("bit_generator") != "PCG64":
            raise ValueError(f"unexpected generator {state.get('bit_generator')!r}")
        self._rng.bit_generator.state = state

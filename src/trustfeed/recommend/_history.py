"""Per-user state of the online recommender: recent positives and everything seen.

A user's profile is a recency-weighted sum of their latest positives, so an event
changes the next recommendation as soon as ``push`` returns — no retraining. The
ring buffer keeps the last ``size`` positives per user row (numba kernel: the
stream's hot path). ``seen`` keeps every (user, item) pair the user was shown or
engaged with, for the seen filter: a CSR base plus an append buffer merged when
it grows.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp


class RecentPositives:
    """Ring buffer of the last ``size`` positive (item row, weight, time) per user row."""

    def __init__(self, size: int = 64) -> None:
        self.size = int(size)
        self.items = np.full((0, self.size), -1, np.int64)
        self.weights = np.zeros((0, self.size), np.float32)
        self.times = np.zeros((0, self.size), np.float64)
        self.heads = np.zeros(0, np.int64)
        self.lengths = np.zeros(0, np.int64)

    def _ensure(self, n_rows: int) -> None:
        have = len(self.heads)
        if n_rows <= have:
            return
        new = max(n_rows, 2 * have, 64)
        extra = new - have
        self.items = np.vstack([self.items, np.full((extra, self.size), -1, np.int64)])
        self.weights = np.vstack([self.weights, np.zeros((extra, self.size), np.float32)])
        self.times = np.vstack([self.times, np.zeros((extra, self.size), np.float64)])
        self.heads = np.concatenate([self.heads, np.zeros(extra, np.int64)])
        self.lengths = np.concatenate([self.lengths, np.zeros(extra, np.int64)])

    def clear(self, users: np.ndarray) -> None:
        """Forget these user rows (erasure or a reused row)."""
        users = users[users < len(self.heads)]
        self.items[users] = -1
        self.weights[users] = 0
        self.heads[users] = 0
        self.lengths[users] = 0

    def recent(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(items, weights, age rank) per user, newest first; rank = 0 for the newest."""
        n = len(users)
        out_items = np.full((n, self.size), -1, np.int64)
        out_w = np.zeros((n, self.size), np.float32)
        known = users < len(self.heads)
        u = users[known]
        if len(u):
            # Position of the k-th newest entry: head - 1 - k (mod size).
            offs = (self.heads[u][:, None] - 1 - np.arange(self.size)[None, :]) % self.size
            valid = np.arange(self.size)[None, :] < self.lengths[u][:, None]
            its = np.take_along_axis(self.items[u], offs, axis=1)
            ws = np.take_along_axis(self.weights[u], offs, axis=1)
            out_items[known] = np.where(valid, its, -1)
            out_w[known] = np.where(valid, ws, 0)
        rank = np.broadcast_to(np.arange(self.size), (n, self.size))
        return out_items, out_w, rank

    def state(self) -> dict[str, np.ndarray]:
        return {
            "items": self.items, "weights": self.weights, "times": self.times,
            "heads": self.heads, "lengths": self.lengths,
        }  # fmt: skip

    @classmethod
    def from_state(cls, size: int, state: dict[str, np.ndarray]) -> RecentPositives:
        buf = cls(size)
        buf.items, buf.weights, buf.times = state["items"], state["weights"], state["times"]
        buf.heads, buf.lengths = state["heads"], state["lengths"]
        return buf


class SeenPairs:
    """Every (user row, item row) pair ever shown or engaged with, for the seen filter.

    A CSR base plus an append buffer. Only writers (``add``, ``remove_*``,
    ``compact``) change it; ``row`` and ``matrix`` read base and buffer as they
    are, so readers may run together while no writer does. The buffer is merged
    once it holds 1/16 of the base: a reader scans it, a merge copies the base.
    """

    def __init__(self) -> None:
        self.base = sp.csr_matrix((0, 0), dtype=np.int8)
        self._users = np.zeros(0, np.int64)
        self._items = np.zeros(0, np.int64)

    def add(self, users: np.ndarray, items: np.ndarray) -> None:
        self._users = np.concatenate([self._users, users.astype(np.int64)])
        self._items = np.concatenate([self._items, items.astype(np.int64)])
        if len(self._users) > max(_MIN_BUFFER, self.base.nnz // 16):
            self.compact()

    def compact(self) -> None:
        if not len(self._users):
            return
        u, i = self._users, self._items
        shape = (
            max(self.base.shape[0], int(u.max(initial=-1)) + 1),
            max(self.base.shape[1], int(i.max(initial=-1)) + 1),
        )
        base = self.base.tocoo()
        merged = sp.csr_matrix(
            (
                np.ones(base.nnz + len(u), np.int8),
                (np.concatenate([base.row, u]), np.concatenate([base.col, i])),
            ),
            shape=shape,
        )
        merged.sum_duplicates()
        merged.data[:] = 1
        self.base = merged
        self._users, self._items = np.zeros(0, np.int64), np.zeros(0, np.int64)

    def remove_users(self, users: np.ndarray) -> None:
        self.compact()
        users = users[users < self.base.shape[0]]
        if len(users):
            keep = sp.diags(
                (~np.isin(np.arange(self.base.shape[0]), users)).astype(np.int8), dtype=np.int8
            )
            self.base = (keep @ self.base).tocsr()
            self.base.eliminate_zeros()

    def remove_items(self, items: np.ndarray) -> None:
        self.compact()
        items = items[items < self.base.shape[1]]
        if len(items):
            keep = sp.diags(
                (~np.isin(np.arange(self.base.shape[1]), items)).astype(np.int8), dtype=np.int8
            )
            self.base = (self.base @ keep).tocsr()
            self.base.eliminate_zeros()

    def is_empty(self) -> bool:
        return not self.base.nnz and not len(self._users)

    def row(self, user: int) -> np.ndarray:
        """Item rows seen by one user row (unsorted, maybe repeated; empty if unknown)."""
        base = self.base
        own = (
            base.indices[base.indptr[user] : base.indptr[user + 1]].astype(np.int64)
            if 0 <= user < base.shape[0]
            else np.zeros(0, np.int64)
        )
        if not len(self._users):
            return own
        return np.concatenate([own, self._items[self._users == user]])

    def matrix(self, users: np.ndarray, n_items: int) -> sp.csr_matrix:
        """Seen indicator for ``users`` (rows; unknown rows empty) over ``n_items`` columns."""
        out = _rows_of(self.base, users, n_items)
        fits = self._items < n_items
        if fits.any():
            u, i = self._users[fits], self._items[fits]
            buffered = sp.csr_matrix(
                (np.ones(len(u), np.int8), (u, i)), shape=(int(u.max()) + 1, n_items)
            )
            out = (out + _rows_of(buffered, users, n_items)).tocsr()
            out.data[:] = 1  # a pair in both base and buffer is still one pair
        return out


#: Smallest append buffer merged into the base (see :class:`SeenPairs`).
_MIN_BUFFER = 20_000


def _rows_of(m: sp.csr_matrix, users: np.ndarray, n_cols: int) -> sp.csr_matrix:
    """Rows ``users`` of ``m`` (empty where out of range), widened to ``n_cols`` columns."""
    known = (users >= 0) & (users < m.shape[0])
    if not known.any():
        return sp.csr_matrix((len(users), n_cols), dtype=np.int8)
    out = m[np.where(known, users, 0)].tocsr()
    out.resize((len(users), n_cols))
    if not known.all():
        out = (sp.diags(known.astype(np.int8), dtype=np.int8) @ out).tocsr()
    return out


@numba.njit(cache=True)
def _push_pairs(
    items, weights, times, heads, lengths, users, new_items, new_w, new_t, window, proximity
):  # pragma: no cover - numba
    """Push positives and return the proximity pairs each forms with the user's recent ones.

    Gives exactly the pairs ``proximity_gram`` would count over the whole history, as
    long as ``window`` ≤ buffer size: the Gram matrix can grow with the stream.
    """
    size = items.shape[1]
    n_pairs = 0
    for k in range(len(users)):
        n_pairs += 2 * min(window, lengths[users[k]] + k)  # upper bound
    rows = np.empty(n_pairs, np.int32)
    cols = np.empty(n_pairs, np.int32)
    vals = np.empty(n_pairs, np.float32)
    prev = np.full(len(users), -1, np.int64)
    m = 0
    for k in range(len(users)):
        u = users[k]
        h = heads[u]
        if lengths[u] > 0:
            prev[k] = items[u, (h - 1) % size]
        for g in range(1, min(window, lengths[u]) + 1):
            other = items[u, (h - g) % size]
            w = np.float32(np.exp(-g / proximity))
            rows[m], cols[m], vals[m] = new_items[k], other, w
            rows[m + 1], cols[m + 1], vals[m + 1] = other, new_items[k], w
            m += 2
        items[u, h] = new_items[k]
        weights[u, h] = new_w[k]
        times[u, h] = new_t[k]
        heads[u] = (h + 1) % size
        if lengths[u] < size:
            lengths[u] += 1
    return rows[:m], cols[:m], vals[:m], prev


def push_with_pairs(
    buffer: RecentPositives,
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    times: np.ndarray,
    *,
    window: int,
    proximity: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``buffer.push`` that also returns the new (row, col, weight) proximity pairs and,
    per event, the user's previous positive item (-1 if none), for transitions."""
    if len(users) == 0:
        empty = np.zeros(0, np.int32)
        return empty, empty, np.zeros(0, np.float32), np.zeros(0, np.int64)
    buffer._ensure(int(users.max()) + 1)
    return _push_pairs(
        buffer.items, buffer.weights, buffer.times, buffer.heads, buffer.lengths,
        users.astype(np.int64), items.astype(np.int64), weights.astype(np.float32),
        times.astype(np.float64), int(window), float(proximity),
    )  # fmt: skip


#: Triples per item row from which :func:`pair_counts` uses its kernel.
_KERNEL_PER_ROW = 256


def pair_counts(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int) -> sp.csr_matrix:
    """The ``n × n`` CSR sum of (row, col, value) triples, duplicates added up.

    ``csr_matrix((vals, (rows, cols)))`` sorts every row's raw triples to merge
    duplicates; a proximity window yields ~``2 · window`` triples per event, so that
    sort was the largest cost of ingesting ml-100k. Here duplicates merge through a
    dense row accumulator (float64) and only each row's distinct columns are sorted.
    That pays from a few hundred triples per row (ml-100k's fit: 4,100 a row, 0.08 s
    against 0.28 s); a stream batch has far fewer (10k events over 5k items: 120 a row,
    22 ms against 18 ms) and a single event's O(n) passes would dominate, so below
    :data:`_KERNEL_PER_ROW` scipy's path is kept.
    """
    if len(rows) < _KERNEL_PER_ROW * n:
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)
    # No index up-cast: at a million events the triples are tens of millions long.
    indptr, indices, data = _sum_by_row(rows, cols, vals.astype(np.float32, copy=False), int(n))
    return sp.csr_matrix((data, indices, indptr), shape=(n, n))


@numba.njit(cache=True, nogil=True)
def _sum_by_row(rows, cols, vals, n):  # pragma: no cover - numba
    starts = np.zeros(n + 1, np.int64)
    for j in range(len(rows)):
        starts[rows[j] + 1] += 1
    for r in range(n):
        starts[r + 1] += starts[r]
    by_row_cols = np.empty(len(rows), np.int32)  # the triples bucketed by row
    by_row_vals = np.empty(len(rows), np.float32)
    fill = starts[:-1].copy()
    for j in range(len(rows)):
        p = fill[rows[j]]
        by_row_cols[p] = cols[j]
        by_row_vals[p] = vals[j]
        fill[rows[j]] = p + 1
    mark = np.full(n, -1, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    for r in range(n):
        distinct = 0
        for p in range(starts[r], starts[r + 1]):
            c = by_row_cols[p]
            if mark[c] != r:
                mark[c] = r
                distinct += 1
        indptr[r + 1] = indptr[r] + distinct
    indices = np.empty(indptr[n], np.int32)
    data = np.empty(indptr[n], np.float32)
    acc = np.zeros(n, np.float64)
    mark[:] = -1
    for r in range(n):
        lo = m = indptr[r]
        for p in range(starts[r], starts[r + 1]):
            c = by_row_cols[p]
            if mark[c] != r:
                mark[c] = r
                acc[c] = 0.0
                indices[m] = c
                m += 1
            acc[c] += by_row_vals[p]
        if (m - lo) * 16 < n:
            indices[lo:m].sort()
        else:  # a dense row: collect its columns in order instead of sorting them
            m = lo
            for c in range(n):
                if mark[c] == r:
                    indices[m] = c
                    m += 1
        for q in range(lo, m):
            data[q] = acc[indices[q]]
    return indptr, indices, data

"""Candidate sources: each scores every eligible item for a batch of users.

* ``item2item`` — the user's recency-weighted recent positives times the item-item
  weights (sequence-aware EASE), plus a directional transition term from the
  latest positive;
* ``ann`` — inner-product search over item embeddings in a FAISS index, the user
  vector being the same recency-weighted mix of their items' embeddings;
* ``trending`` — time-decayed positives; ``fresh`` — recent uploads with few views
  (exploration for cold items); ``following`` — items by followed creators.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def profile_matrix(
    items: np.ndarray, weights: np.ndarray, rank: np.ndarray, recency: float, n_items: int
) -> sp.csr_matrix:
    """Sparse users × items profile: Σ weight · exp(-rank / recency) over recent positives."""
    valid = (items >= 0) & (items < n_items) & (weights > 0)
    vals = (weights * np.exp(-rank / recency))[valid].astype(np.float32)
    if items.shape[0] == 1:
        # One user (a feed request): CSR directly, as the COO route cost more than the
        # product it feeds. Same entries in the same order: duplicates sum alike.
        indptr = np.array([0, len(vals)])
        prof = sp.csr_matrix((vals, items[valid], indptr), shape=(1, n_items))
    else:
        rows = np.broadcast_to(np.arange(items.shape[0])[:, None], items.shape)
        prof = sp.csr_matrix((vals, (rows[valid], items[valid])), shape=(items.shape[0], n_items))
    prof.sum_duplicates()
    return prof


def transition_matrix(prev: np.ndarray, nxt: np.ndarray, n_items: int, smoothing: float = 5.0):
    """Row-normalised counts of ``prev → nxt`` moves between consecutive positives."""
    counts = sp.csr_matrix((np.ones(len(prev), np.float32), (prev, nxt)), shape=(n_items, n_items))
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    return (sp.diags(1.0 / (totals + smoothing)) @ counts).astype(np.float32).tocsr()


def item_embeddings(
    gram: sp.csr_matrix, dim: int, seed: int, max_items: int | None = None
) -> np.ndarray:
    """Spectral item embeddings of the degree-normalised proximity Gram matrix.

    The top eigenvectors of ``S = D^-½ G D^-½`` scaled by √eigenvalue: items that
    co-occur closely get nearby vectors, and the inner product approximates the
    normalised co-occurrence (a low-rank view of what item2item models exactly).

    Beyond ``max_items`` items the eigen-solve runs on the most frequent ones only and
    the others are placed by the Nyström extension ``S[tail, head] v / √λ``. On the whole
    of a 53k-item generated catalogue ARPACK ran 18 minutes without converging: every
    rarely paired tail item is its own near-isolated component with eigenvalue ≈ 1, so
    the top of the spectrum is a huge degenerate cluster.
    """
    n = gram.shape[0]
    dim = min(dim, n - 2)
    if dim <= 0:
        return np.zeros((n, 0), np.float32)
    deg = np.asarray(gram.sum(axis=1)).ravel()
    norm = sp.diags(1.0 / np.sqrt(np.maximum(deg, 1e-9)))
    sym = (norm @ gram @ norm).astype(np.float64).tocsr()
    if max_items is None or n <= max_items:
        vals, vecs = _top_eigen(sym, dim, seed)
        vecs = vecs * np.sqrt(vals)
    else:
        head = np.sort(np.argsort(-gram.diagonal(), kind="stable")[:max_items])
        tail = np.setdiff1d(np.arange(n), head)
        vals, head_vecs = _top_eigen(sym[head][:, head], min(dim, len(head) - 2), seed)
        vecs = np.zeros((n, head_vecs.shape[1]))
        vecs[head] = head_vecs * np.sqrt(vals)
        vecs[tail] = (sym[tail][:, head] @ head_vecs) / np.sqrt(np.maximum(vals, 1e-9))
    # eigsh's sign per vector is arbitrary: fix it so saved models are reproducible.
    signs = np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])])
    return (vecs * np.where(signs == 0, 1, signs)).astype(np.float32)


def _top_eigen(sym: sp.csr_matrix, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``dim`` largest eigenvalues (≥ 0, descending) and their eigenvectors."""
    v0 = np.random.default_rng(seed).standard_normal(sym.shape[0])
    vals, vecs = spla.eigsh(sym, k=dim, which="LA", v0=v0)
    order = np.argsort(-vals)
    return np.maximum(vals[order], 0.0), vecs[:, order]


@dataclass
class AnnIndex:
    """Exact inner-product index for up to 200k items, HNSW beyond (FAISS).

    A few queries at a time (a single feed) are answered exactly by scanning the
    vectors in order of decreasing norm and stopping once ``|q| · |v|`` of the
    next vector cannot reach the current ``k``-th similarity. Spectral embeddings
    are very uneven: on the 100,000-item generated world more than half the vectors
    are zero and the scan stops after 1,024, where the full scan read 19 MB per query
    (0.5-1 ms). FAISS computes each product the same way on the prefix, so the
    similarities are bit-identical to the full search.
    """

    vectors: np.ndarray
    index: faiss.Index
    by_norm: np.ndarray | None = None  # rows, largest norm first (exact flat index only)
    sorted_vectors: np.ndarray | None = None
    sorted_norms: np.ndarray | None = None

    @classmethod
    def build(cls, vectors: np.ndarray) -> AnnIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        if len(vectors) > 200_000:
            index: faiss.Index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(vectors)
        out = cls(vectors, index)
        if len(vectors) <= 200_000 and len(vectors) > 4 * _FIRST_SCAN:
            norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
            order = np.argsort(-norms, kind="stable")
            out.by_norm, out.sorted_norms = order, norms[order]
            out.sorted_vectors = np.ascontiguousarray(vectors[order])
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, item rows) of the ``k`` nearest items; rows -1 where fewer exist."""
        k = min(k, len(self.vectors))
        if k == 0 or len(queries) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(queries) >= _PARALLEL_QUERIES:
            sims, rows = self.index.search(queries, k)
            return sims, rows.astype(np.int64)
        with _one_omp_thread():
            if self.by_norm is None:
                sims, rows = self.index.search(queries, k)
                return sims, rows.astype(np.int64)
            found = [self._pruned(q[None, :], k) for q in queries]
        return np.vstack([f[0] for f in found]), np.vstack([f[1] for f in found])

    def _pruned(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.by_norm is not None and self.sorted_vectors is not None
        assert self.sorted_norms is not None
        n = len(self.by_norm)
        norm = float(np.linalg.norm(query.astype(np.float64)))
        take = min(n, max(_FIRST_SCAN, 4 * k))
        while True:
            sims, rows = faiss.knn(query, self.sorted_vectors[:take], k, faiss.METRIC_INNER_PRODUCT)
            if take >= n:
                break
            # Float products may exceed the exact bound by a few ulps: keep a margin.
            bound = norm * float(self.sorted_norms[take]) * (1 + 1e-4)
            if rows[0, k - 1] >= 0 and bound < float(sims[0, k - 1]):
                break
            take = min(n, 4 * take)
        rows = rows.astype(np.int64)
        return sims, np.where(rows >= 0, self.by_norm[np.maximum(rows, 0)], -1)


#: First prefix the norm-ordered scan reads (see :class:`AnnIndex`).
_FIRST_SCAN = 1024

#: Below this many queries FAISS searches on one OpenMP thread. A single query split
#: over threads was 30x slower (15 ms against 0.5 ms, 100k items) on two busy cores,
#: and a service already runs one request per thread.
_PARALLEL_QUERIES = 16


@contextmanager
def _one_omp_thread() -> Iterator[None]:
    # The OpenMP thread count is a per-thread setting: other threads are unaffected.
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)

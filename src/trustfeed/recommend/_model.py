"""What ``refresh`` publishes: the solved item model, never changed once published.

``refresh`` solves a new model from a snapshot of the counts while readers go on
with the old one, then swaps the reference. Readers keep the object they started
with, so one feed never mixes two models. Only the embeddings may be left to
solve on first use; that happens once, under the model's own lock, and the
recommender's state lock is not held meanwhile.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from trustfeed.recommend._sources import AnnIndex, item_embeddings


class ItemModel:
    """Item-item weights, transitions, the id each row held, and the ANN embeddings.

    ``model_ids[r]`` is the id row ``r`` held when the counts were taken: a row that
    another id has reused since is not in the model. ``pending`` holds the Gram
    matrix and solver settings (dim, seed, max_items) of embeddings still to solve.
    """

    def __init__(
        self,
        weights: sp.csr_matrix,
        transitions: sp.csr_matrix,
        model_ids: np.ndarray,
        embeddings: np.ndarray | None = None,
        pending: tuple[sp.csr_matrix, int, int, int] | None = None,
    ) -> None:
        self.weights = weights
        self.transitions = transitions
        self.model_ids = model_ids
        n = weights.shape[0]
        self._embeddings = np.zeros((n, 0), np.float32) if embeddings is None else embeddings
        self._ann = AnnIndex.build(self._embeddings) if self._embeddings.shape[1] else None
        self._pending = pending
        self._lock = threading.Lock()

    @classmethod
    def empty(cls) -> ItemModel:
        none = sp.csr_matrix((0, 0), dtype=np.float32)
        return cls(none, none, np.zeros(0, np.int64))

    def with_embeddings(self, vectors: np.ndarray, ann: AnnIndex | None = None) -> ItemModel:
        """The same model over other embeddings (``ann`` built from them unless given)."""
        out = ItemModel(self.weights, self.transitions, self.model_ids)
        out._embeddings = vectors
        out._ann = ann if ann is not None or not vectors.shape[1] else AnnIndex.build(vectors)
        return out

    @property
    def n_items(self) -> int:
        return int(self.weights.shape[0])

    @property
    def pending_gram(self) -> sp.csr_matrix | None:
        """The counts the embeddings are still to be solved from (``None`` once solved)."""
        pending = self._pending
        return None if pending is None else pending[0]

    def solve(self) -> None:
        """Solve pending embeddings now (at most once, whichever thread comes first)."""
        if self._pending is None:
            return
        with self._lock:
            if self._pending is None:  # another thread solved them while we waited
                return
            gram, dim, seed, max_items = self._pending
            vectors = item_embeddings(gram, dim, seed, max_items)
            self._embeddings = vectors
            self._ann = AnnIndex.build(vectors) if vectors.shape[1] else None
            self._pending = None  # last: readers that see None find the index set

    @property
    def embeddings(self) -> np.ndarray:
        self.solve()
        return self._embeddings

    @property
    def ann(self) -> AnnIndex | None:
        self.solve()
        return self._ann

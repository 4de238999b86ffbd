"""Peer recommenders that ``trustfeed bench quality`` sets beside ours.

Each is a small class with the :class:`~trustfeed.recommend._base.RecommenderModel`
surface, so the harness treats ours and theirs alike. They share one base,
:class:`MatrixPeer`, for the parts that must not differ between peers or the
comparison would measure them rather than the algorithms:

* training data is the binary user × item matrix of the frame (a user who
  met an item several times met it once), except that popularity counts
  every interaction;
* users absent from training get the most popular training items (ties by
  item id) — they have no history, so there is nothing to exclude;
* scoring runs in batches of users so a dense score block stays under
  :data:`BATCH_CELLS` cells, whatever the number of users.

The peer libraries (implicit, lightfm) are imported when a model is fitted,
so trustfeed imports without the ``bench`` extra.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from trustfeed.bench._errors import BenchError, PeerUnavailableError
from trustfeed.recommend._base import PAD, InteractionMatrix, NotFittedError, index_of, top_k

#: Most dense score cells (users × items) held at once while recommending.
BATCH_CELLS = 1 << 23

Params = dict[str, Any]


def import_peer(module: str) -> ModuleType:
    """Import a peer library, or say which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise PeerUnavailableError(
            f"peer library {top!r} is not installed; run: pip install 'trustfeed[bench]'"
        ) from exc


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread: implicit runs its own threads and warns (slowly) otherwise."""
    threadpoolctl = import_peer("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, "blas"):
        yield


class MatrixPeer:
    """Shared fitting, batching, padding and the popularity fallback.

    Subclasses fit on the binary matrix in :meth:`_fit_matrix` and score
    rows in :meth:`_scores` (or return top columns directly from :meth:`_top`).
    """

    name: ClassVar[str] = ""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self._data: InteractionMatrix | None = None
        self._counts = np.zeros(0, np.float64)
        self._popular = np.zeros(0, np.int64)

    @classmethod
    def param_grid(cls, dataset_size: tuple[int, int]) -> list[Params]:
        """Validation grid for a training set of ``(n_users, n_items)``."""
        return [{}]

    @property
    def params(self) -> Params:
        """The constructor keywords besides ``seed``."""
        return {}

    def fit(self, interactions: pd.DataFrame) -> Self:
        data = InteractionMatrix.from_frame(interactions)
        counts = np.asarray(data.matrix.sum(axis=0), dtype=np.float64).ravel()
        seen = data.matrix.copy()
        seen.data[:] = 1.0
        self._set_state(InteractionMatrix(data.user_ids, data.item_ids, seen), counts)
        self._fit_matrix(seen)
        return self

    def recommend(
        self, user_ids: npt.ArrayLike, k: int = 20, exclude_seen: bool = True
    ) -> np.ndarray:
        """``(len(user_ids), k)`` raw item ids, best first, padded with -1.

        Users unknown to the model get the most popular training items.
        """
        data = self._fitted()
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        rows = index_of(data.user_ids, np.atleast_1d(np.asarray(user_ids, dtype=np.int64)))
        out = np.full((len(rows), k), PAD, dtype=np.int64)
        known = np.flatnonzero(rows >= 0) if k else np.zeros(0, np.int64)
        step = max(1, BATCH_CELLS // max(data.shape[1], 1))
        for start in range(0, len(known), step):
            at = known[start : start + step]
            cols = self._top(rows[at], k, exclude_seen)
            out[at] = np.where(cols >= 0, data.item_ids[cols], PAD)
        fallback = data.item_ids[self._popular[:k]]
        out[rows < 0, : len(fallback)] = fallback
        return out

    def _fit_matrix(self, seen: sp.csr_matrix) -> None:
        """Learn from the binary users × items matrix."""

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _top(self, rows: np.ndarray, k: int, exclude_seen: bool) -> np.ndarray:
        """Best column indices for matrix rows ``rows``, padded with -1."""
        exclude = self._fitted().matrix[rows] if exclude_seen else None
        return top_k(self._scores(rows), k, exclude)

    def _set_state(self, data: InteractionMatrix, counts: np.ndarray) -> None:
        self._data = data
        self._counts = counts
        self._popular = np.argsort(-counts, kind="stable").astype(np.int64)

    def _fitted(self) -> InteractionMatrix:
        if self._data is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")
        return self._data


class Popularity(MatrixPeer):
    """Most interacted-with items in training, the same list for everyone.

    >>> frame = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 11, 11, 12],
    ...                       "timestamp": [0.0, 1, 2, 3]})
    >>> Popularity().fit(frame).recommend([1, 9], k=3).tolist()
    [[12, -1, -1], [11, 10, 12]]
    """

    name = "popularity"

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._counts, (len(rows), len(self._counts)))


class EASE(MatrixPeer):
    """Embarrassingly Shallow Autoencoder (Steck, WWW 2019), our numpy reference.

    Closed form: ``P = (XᵀX + λI)⁻¹`` and ``B = I − P · diag(1/diag(P))``,
    i.e. ``B[i, j] = −P[i, j] / P[j, j]`` off the diagonal and 0 on it; a user's
    scores are their binary history row times ``B``. ``dtype`` picks the
    precision of the solve: float32 halves memory and time on large catalogues
    at no visible cost in ranking.
    """

    name = "ease"
    FORMAT: ClassVar[str] = "trustfeed.bench.ease/1"

    def __init__(self, seed: int = 42, lam: float = 250.0, dtype: str = "float64") -> None:
        super().__init__(seed)
        if not lam > 0:
            raise ValueError(f"lam must be positive, got {lam}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.lam = float(lam)
        self.dtype = dtype
        self._weights = np.zeros((0, 0), dtype)

    @classmethod
    def param_grid(cls, dataset_size: tuple[int, int]) -> list[Params]:
        dtype = "float32" if dataset_size[1] > 5000 else "float64"
        return [{"lam": lam, "dtype": dtype} for lam in (50.0, 100.0, 250.0, 500.0, 1000.0)]

    @property
    def params(self) -> Params:
        return {"lam": self.lam, "dtype": self.dtype}

    def _fit_matrix(self, seen: sp.csr_matrix) -> None:
        x = seen.astype(self.dtype)
        gram = np.asarray((x.T @ x).toarray(), dtype=self.dtype, order="F")
        gram[np.diag_indices_from(gram)] += self.lam
        self._weights = ease_weights(gram)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        history = self._fitted().matrix[rows].astype(self.dtype)
        return np.asarray(history @ self._weights)

    def save(self, path: str | Path) -> None:
        """Write the fitted model to one ``.npz`` file (no pickle inside)."""
        data = self._fitted()
        with open(path, "wb") as file:
            np.savez(
                file,
                format=np.array(self.FORMAT),
                params=np.array(json.dumps({"seed": self.seed, **self.params})),
                user_ids=data.user_ids,
                item_ids=data.item_ids,
                indptr=data.matrix.indptr,
                indices=data.matrix.indices,
                counts=self._counts,
                weights=self._weights,
            )

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as arrays:
                found = str(arrays["format"])
                if found != cls.FORMAT:
                    raise BenchError(f"{path}: format {found!r}, expected {cls.FORMAT!r}")
                model = cls(**json.loads(str(arrays["params"])))
                users, items = arrays["user_ids"], arrays["item_ids"]
                indices = arrays["indices"]
                seen = sp.csr_matrix(
                    (np.ones(len(indices), np.float32), indices, arrays["indptr"]),
                    shape=(len(users), len(items)),
                )
                model._set_state(InteractionMatrix(users, items, seen), arrays["counts"])
                model._weights = arrays["weights"]
        except (OSError, KeyError, ValueError) as exc:
            raise BenchError(f"{path}: not a saved EASE model: {exc}") from exc
        return model


def ease_weights(gram: np.ndarray, block: int = 1024) -> np.ndarray:
    """EASE's ``B`` from the regularised Gram matrix, overwriting ``gram``.

    The inverse goes through Cholesky (``potrf`` then ``potri``, half the work
    of LU), which fills only the upper triangle; it is mirrored block by
    block so no second n × n array is needed.

    >>> g = np.array([[3.0, 1.0], [1.0, 2.0]])
    >>> p = np.linalg.inv(g)
    >>> np.allclose(ease_weights(g.copy()), -p / np.diag(p) * (1 - np.eye(2)))
    True
    """
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (gram,))
    factor, info = potrf(gram, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise BenchError(f"EASE: Gram matrix is not positive definite (LAPACK info {info})")
    n = inverse.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        diagonal = inverse[start:stop, start:stop]
        diagonal[...] = np.triu(diagonal) + np.triu(diagonal, 1).T
        inverse[stop:, start:stop] = inverse[start:stop, stop:].T
    # Symmetric now, so the transpose is the same matrix in C order, which
    # sparse @ dense needs (an F-ordered B would be copied on every batch).
    inverse = inverse.T
    inverse /= -inverse.diagonal().copy()
    np.fill_diagonal(inverse, 0.0)
    return inverse


class _ImplicitPeer(MatrixPeer):
    """A model from the implicit library; its own batch ``recommend`` does top-k."""

    def __init__(self, seed: int = 42, num_threads: int = 2) -> None:
        super().__init__(seed)
        self.num_threads = num_threads
        self._model: Any = None

    def _make(self) -> Any:
        raise NotImplementedError

    def _fit_matrix(self, seen: sp.csr_matrix) -> None:
        with single_threaded_blas():  # implicit checks it when the model is made
            self._model = self._make()
            self._model.fit(seen, show_progress=False)

    def _top(self, rows: np.ndarray, k: int, exclude_seen: bool) -> np.ndarray:
        seen = self._fitted().matrix
        n = min(k, seen.shape[1])
        ids, scores = self._model.recommend(
            rows, seen[rows], N=n, filter_already_liked_items=exclude_seen
        )
        # Filtered items come back last with score -FLT_MAX.
        valid = (ids >= 0) & (scores > np.finfo(np.float32).min)
        out = np.full((len(rows), k), PAD, dtype=np.int64)
        out[:, :n] = np.where(valid, ids, PAD)
        return out


class ImplicitALS(_ImplicitPeer):
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) from the implicit library.

    With ``num_threads`` > 1 the result is still deterministic: each user's
    and item's solve is independent.
    """

    name = "als"

    def __init__(
        self,
        seed: int = 42,
        factors: int = 64,
        regularization: float = 3.0,
        alpha: float = 1.0,
        iterations: int = 15,
        num_threads: int = 2,
    ) -> None:
        super().__init__(seed, num_threads)
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations

    @classmethod
    def param_grid(cls, dataset_size: tuple[int, int]) -> list[Params]:
        # Centred on what ml-100k's validation liked (strong L2, alpha 1): reg 30
        # and alpha 3-10 scored lower, fewer factors too.
        return [
            {"factors": factors, "regularization": reg}
            for factors in (64, 128)
            for reg in (1.0, 3.0, 10.0)
        ]

    @property
    def params(self) -> Params:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
        }

    def _make(self) -> Any:
        als = import_peer("implicit.cpu.als")
        return als.AlternatingLeastSquares(
            **self.params, num_threads=self.num_threads, random_state=self.seed
        )


class ImplicitBPR(_ImplicitPeer):
    """Bayesian Personalized Ranking (Rendle et al. 2009) from the implicit library.

    SGD over threads is racy (Hogwild): only ``num_threads=1`` repeats exactly.
    """

    name = "bpr"

    def __init__(
        self,
        seed: int = 42,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        num_threads: int = 2,
    ) -> None:
        super().__init__(seed, num_threads)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations

    @classmethod
    def param_grid(cls, dataset_size: tuple[int, int]) -> list[Params]:
        return [
            {"factors": factors, "learning_rate": rate}
            for factors in (64, 128)
            for rate in (0.01, 0.05, 0.1)
        ]

    @property
    def params(self) -> Params:
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
        }

    def _make(self) -> Any:
        bpr = import_peer("implicit.cpu.bpr")
        return bpr.BayesianPersonalizedRanking(
            **self.params, num_threads=self.num_threads, random_state=self.seed
        )


class LightFMWarp(MatrixPeer):
    """LightFM with the WARP loss (Weston et al. 2011), no side features.

    Scores are ``user · item + item bias``, computed for all items at once
    from the learned representations: the same ranking as LightFM's
    ``predict`` (which adds the user's bias, a constant per row) without its
    per-pair loop. SGD over threads is racy: only ``num_threads=1`` repeats
    exactly.
    """

    name = "lightfm"

    def __init__(
        self,
        seed: int = 42,
        no_components: int = 64,
        learning_rate: float = 0.05,
        epochs: int = 20,
        num_threads: int = 2,
    ) -> None:
        super().__init__(seed)
        self.no_components = no_components
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.num_threads = num_threads
        self._users = np.zeros((0, 0), np.float32)
        self._items = np.zeros((0, 0), np.float32)
        self._item_bias = np.zeros(0, np.float32)

    @classmethod
    def param_grid(cls, dataset_size: tuple[int, int]) -> list[Params]:
        return [
            {"no_components": components, "epochs": epochs}
            for components in (32, 64)
            for epochs in (10, 30)
        ]

    @property
    def params(self) -> Params:
        return {
            "no_components": self.no_components,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
        }

    def _fit_matrix(self, seen: sp.csr_matrix) -> None:
        lightfm = import_peer("lightfm")
        model = lightfm.LightFM(
            loss="warp",
            no_components=self.no_components,
            learning_rate=self.learning_rate,
            random_state=self.seed,
        )
        model.fit_partial(seen.tocoo(), epochs=self.epochs, num_threads=self.num_threads)
        self._item_bias, self._items = model.get_item_representations()
        _, self._users = model.get_user_representations()

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self._users[rows] @ self._items.T + self._item_bias


#: The peers by the name the CLI and the results use.
PEERS: dict[str, type[MatrixPeer]] = {
    peer.name: peer for peer in (Popularity, EASE, ImplicitALS, ImplicitBPR, LightFMWarp)
}

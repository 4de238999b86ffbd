"""The licensed short-video recommender: online state, candidate sources, ranking, reasons.

State lives in two collisionless tables (users, items) and grows with the stream:

* ``partial_fit`` folds time-ordered events into each user's recent positives,
  the seen pairs, item statistics and the proximity Gram / transition counts.
  The user's next recommendation reflects the event as soon as it returns.
* ``refresh`` re-solves the item-item weights and the ANN embeddings from the
  accumulated counts (seconds, not a retrain from raw data); ``fit`` is
  ``partial_fit`` of everything followed by ``refresh``.

Scoring (``_scoring``): item2item (+ transition) score, plus blended ANN /
trending / following scores; if the data carried multi-task labels (watch time,
likes, shares, skips, hates), a :class:`MultiTaskRanker` re-scores the best
candidates. Then the re-ranker applies the seen filter, eligibility,
creator/topic caps and the exploration share. One user in a large catalogue is
scored on candidates only (``_candidates``), with the same result.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from trustfeed.data import validate_interactions
from trustfeed.recommend._base import (
    PAD,
    NotFittedError,
    RecommendError,
    UnknownItemError,
    grown,
    resized,
)
from trustfeed.recommend._config import RecommenderConfig
from trustfeed.recommend._history import (
    RecentPositives,
    SeenPairs,
    pair_counts,
    push_with_pairs,
)
from trustfeed.recommend._itemitem import item_weights
from trustfeed.recommend._model import ItemModel
from trustfeed.recommend._persist import load_state, save_state
from trustfeed.recommend._ranker import MultiTaskRanker
from trustfeed.recommend._reasons import Reason
from trustfeed.recommend._rwlock import ReadWriteLock
from trustfeed.recommend._scoring import CANDIDATES_FROM, FEATURES, NO_ID, Scoring
from trustfeed.recommend._signals import (
    ItemStats,
    event_weights,
    has_task_labels,
    negative_mask,
    task_labels,
)
from trustfeed.recommend._sources import AnnIndex, transition_matrix
from trustfeed.recommend._table import CollisionlessTable

_BATCH = 512


class Recommender(Scoring):
    """Short-video "For You" recommender; see the module docstring.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 11],
    ...                    "timestamp": [1.0, 2.0, 1.0, 2.0, 3.0]})
    >>> rec = Recommender(seed=0, embedding_dim=0).fit(df)
    >>> rec.recommend([1], k=2).tolist()
    [[12, -1]]
    >>> [r.source for r in rec.explain(1, 12)]
    ['item2item', 'fresh', 'trending']

    **Threads.** One instance serves a whole process; what may run alongside what:

    * Readers — ``recommend``, ``recommend_with_reasons``, ``explain``, ``popular`` —
      run together from any number of threads.
    * Writers — ``partial_fit``, ``set_items``, ``set_blocked``, ``forget_users`` — run
      one at a time, from any threads; while one runs, readers wait (a few ms for
      100 events at 100,000 items; ``partial_fit`` validates before it locks). No
      reader sees a half-applied write: a blocked item is never served by a call
      that starts after ``set_blocked`` returned.
    * ``refresh`` (a background thread; tens of seconds at 100,000 items) takes a
      snapshot of the counts under the write lock, solves the new model holding no
      lock, then swaps it in under the write lock. Readers serve the previous
      model meanwhile, with live user state: events that arrive during the solve
      show in feeds at once and enter the item model at the next refresh. One
      refresh runs at a time; ``save`` and ``refresh_pending_counts`` wait for it.
    * ``save`` holds the write lock while it writes. ``fit`` is a retrain: safe to
      call, but readers meanwhile see partly ingested state; serve from a fitted or
      loaded instance.

    Lazy work is safe too: the background arrays of a state version are built by the
    first reader that needs them, and embeddings left to solve on first use are
    solved once, outside the state lock (``refresh(solve_ann=True)`` solves them
    before the swap, so no reader waits for them). The locks do not share out the
    CPU: a refresh's solve and a writer's pandas work compete with readers for the
    GIL and the cores (``benchmarks/bench_serving.py`` measures feeds beside both).
    """

    def __init__(self, seed: int = 42, **params: Any) -> None:
        self.seed = int(seed)
        self.config = RecommenderConfig(**params)
        # Eligibility is policy, not learned state, so a refit keeps it; it is kept
        # by item id, not row, because rows are reused after expiry.
        self.blocked_ids = np.zeros(0, np.int64)  # never served
        self.allowed_ids = np.zeros(0, np.int64)  # served when not eligible_by_default
        self._lock = ReadWriteLock()  # live state: readers share, writers exclude
        self._refresh_lock = threading.RLock()  # the Gram matrix and the moves: one folder
        self._cache_lock = threading.Lock()  # per-version caches: one builder
        self._version = 0  # bumped by every write a cached background depends on
        self._meta_version = 0  # bumped when item creators change
        self._reset()

    @classmethod
    def param_grid(cls, dataset_size: tuple[int, int] | None = None) -> list[dict[str, Any]]:
        """The small validation grid the benchmark tunes per dataset (≤ 6 points)."""
        return [
            {"proximity": 10.0, "window": 30, "recency": 10.0, "l2": 10.0},
            {"proximity": 30.0, "window": 60, "recency": 10.0, "l2": 10.0},
            {"proximity": 3.0, "window": 10, "recency": 3.0, "l2": 15.0},
            {"proximity": 3.0, "window": 10, "recency": 3.0, "l2": 15.0, "transition": 0.3},
        ]

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        c = self.config
        self.users = CollisionlessTable(
            0, admit_after=c.admit_after, expire_after=c.expire_after_s, seed=self.seed
        )
        self.items = CollisionlessTable(
            0, admit_after=c.admit_after, expire_after=c.expire_after_s, seed=self.seed + 1
        )
        self.recent = RecentPositives(max(c.history_size, c.window))
        self.seen = SeenPairs()
        self.stats = ItemStats(c.trending_half_life_s)
        self._pairs: list[sp.csr_matrix] = []
        self._gram = sp.csr_matrix((0, 0), dtype=np.float32)
        self._moves: list[np.ndarray] = []
        self._moves_total = np.zeros((0, 2), np.int64)
        self.follows = SeenPairs()  # (user row, creator id) pairs, creator ids as columns
        self.topic = np.zeros(0, np.int64)
        self.topic_names: list[str] = []
        self._model = ItemModel.empty()  # rebuilt by ``refresh``
        self._background = None
        self._creator_items = None
        self.ranker: MultiTaskRanker | None = None
        self.fitted = False
        self._changed(creators=True)

    def _changed(self, creators: bool = False) -> None:
        """Mark cached per-version arrays stale (callers hold the write lock)."""
        self._version += 1
        if creators:
            self._meta_version += 1

    # ------------------------------------------------------------------ training
    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Learn from scratch: stream ``interactions`` in time order, then ``refresh``.

        With multi-task labels and ``train_ranker``, the last 15 % (by time) first
        serves as the ranker's training impressions, scored by the state before them.
        """
        events = self._prepare(interactions)
        with self._refresh_lock:
            with self._lock.write():
                self._reset()
                if items is not None:
                    self._set_items(items)
            if self.config.train_ranker and has_task_labels(events) and len(events) >= 200:
                cut = int(len(events) * 0.85)
                self._ingest_locked(events.iloc[:cut])
                self.refresh()
                ranker = self._train_ranker(events.iloc[cut:])
                with self._lock.write():
                    self.ranker = ranker
                self._ingest_locked(events.iloc[cut:])
            else:
                self._ingest_locked(events)
            self.refresh()
        return self

    def partial_fit(self, events: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Fold new time-ordered events into the live state; visible on return."""
        prepared = self._prepare(events)  # bad input is refused before anything changes
        with self._lock.write():
            if items is not None:
                self._set_items(items)
            self._ingest(prepared)
        if not self.fitted:
            self.refresh()
        return self

    def _prepare(self, interactions: pd.DataFrame) -> pd.DataFrame:
        events = validate_interactions(interactions, source="interactions")
        return events.sort_values("timestamp", kind="stable").reset_index(drop=True)

    def _ingest_locked(self, events: pd.DataFrame) -> None:
        with self._lock.write():
            self._ingest(events)

    def _ingest(self, events: pd.DataFrame) -> None:
        if len(events) == 0:
            return
        times = events["timestamp"].to_numpy(np.float64)
        users = self.users.observe(events["user_id"].to_numpy(np.int64), times)
        items = self.items.observe(events["item_id"].to_numpy(np.int64), times)
        ok = (users >= 0) & (items >= 0)
        weight = event_weights(events, self.config.positive_watch_ratio)[ok]
        users, items, times = users[ok], items[ok], times[ok]
        self.seen.add(users, items)
        self.stats.update(items, times, weight, negative_mask(events)[ok])
        self.stats._ensure(self.items.n_rows)  # readers index stats by any item row
        self._record_follows(events[ok], users)
        pos = weight > 0
        rows, cols, vals, prev = push_with_pairs(
            self.recent, users[pos], items[pos], weight[pos], times[pos],
            window=self.config.window, proximity=self.config.proximity,
        )  # fmt: skip
        n = self.items.n_rows
        self._pairs.append(pair_counts(rows, cols, vals, n))
        self._pairs.append(sp.csr_matrix((weight[pos], (items[pos], items[pos])), shape=(n, n)))
        has_prev = prev >= 0
        self._moves.append(np.stack([prev[has_prev], items[pos][has_prev]], axis=1))
        self._expire(float(times.max()) if len(times) else None)
        self._changed()

    def _record_follows(self, events: pd.DataFrame, users: np.ndarray) -> None:
        if "event" not in events:
            return
        follow = (events["event"].astype(str) == "follow").to_numpy()
        if not follow.any():
            return
        item_rows = self.items.rows(events["item_id"].to_numpy(np.int64)[follow])
        creators = self.stats.creator[np.clip(item_rows, 0, None)]
        known = (item_rows >= 0) & (creators >= 0)
        self.follows.add(users[follow][known], creators[known])

    def _expire(self, now: float | None) -> None:
        if self.config.expire_after_s is None or now is None:
            return
        freed_users, _ = self.users.expire(now)
        freed_items, _ = self.items.expire(now)
        self._clear_user_rows(freed_users)
        self.seen.remove_items(freed_items)
        self.stats.reset(freed_items)
        if len(freed_items):
            self._changed(creators=True)  # freed rows will hold other ids

    def _clear_user_rows(self, rows: np.ndarray) -> None:
        self.recent.clear(rows)
        self.seen.remove_users(rows)
        self.follows.remove_users(rows)

    def forget_users(self, user_ids: npt.ArrayLike) -> int:
        """Remove these users from the live model now (erasure); return how many were known.

        Their row, recent history, seen set and follows go at once, so their
        next request is served as a stranger's. What they contributed to the
        item-item counts is aggregated with everyone else's; the next full
        ``fit`` on the (erasure-filtered) training stream rebuilds it without them.
        """
        ids = _as_ids(user_ids)
        with self._lock.write():
            rows, _ = self.users.remove(ids)
            self._clear_user_rows(rows)
        return len(rows)

    def set_items(self, items: pd.DataFrame) -> None:
        """Attach item metadata (``creator_id``, ``topic``); unknown ids are admitted."""
        with self._lock.write():
            self._set_items(items)

    def _set_items(self, items: pd.DataFrame) -> None:
        if "item_id" not in items:
            raise RecommendError("item metadata needs an item_id column")
        ids = items["item_id"].to_numpy(np.int64)
        when = items["published_at"].to_numpy(np.float64) if "published_at" in items else 0.0
        rows = self.items.rows(ids)
        new = rows < 0
        if new.any():
            times = when[new] if isinstance(when, np.ndarray) else when
            for _ in range(self.config.admit_after):
                self.items.observe(ids[new], times)
            rows = self.items.rows(ids)
        self.stats._ensure(self.items.n_rows)
        if "creator_id" in items:
            self.stats.creator[rows] = items["creator_id"].to_numpy(np.int64)
        if "published_at" in items:
            self.stats.first_seen[rows] = np.minimum(self.stats.first_seen[rows], when)
        if "topic" in items:
            codes, names = pd.factorize(items["topic"].astype(str), sort=True)
            remap = {n: i for i, n in enumerate(self.topic_names)}
            for n in names:
                remap.setdefault(str(n), len(remap))
            self.topic_names = list(remap)
            self.topic = grown(self.topic, self.items.n_rows, -1)
            self.topic[rows] = np.array([remap[str(n)] for n in names], np.int64)[codes]
        self._changed(creators=True)

    def set_blocked(self, item_ids: npt.ArrayLike, blocked: bool = True) -> None:
        """Mark items (in)eligible by id, known to the model yet or not.

        Blocked items are never returned once this returns. ``blocked=False`` lifts a
        block and, with ``eligible_by_default=False``, is what makes an item servable.
        """
        ids = np.unique(np.asarray(item_ids, np.int64))
        with self._lock.write():
            if blocked:
                self.blocked_ids = np.union1d(self.blocked_ids, ids)
                self.allowed_ids = np.setdiff1d(self.allowed_ids, ids, assume_unique=True)
            else:
                self.blocked_ids = np.setdiff1d(self.blocked_ids, ids, assume_unique=True)
                self.allowed_ids = np.union1d(self.allowed_ids, ids)
            self._changed()

    # ------------------------------------------------------------------ the model
    def refresh(self, *, solve_ann: bool = False) -> Self:
        """Re-solve item-item weights, transitions and ANN embeddings from the counts.

        Readers go on with the previous model until the new one is swapped in (see
        the class docstring). The embeddings (an eigen-solve, a third of ml-100k's
        fit) are solved here when scoring uses them (a ranker, or ``ann_weight``) or
        ``solve_ann`` asks; else on first use: reasons, ``explain``, ``save``.
        """
        with self._refresh_lock:
            with self._lock.write():
                gram, parts, moved, model_ids = self._take_counts()
            gram = _folded(gram, parts, len(model_ids))
            moves = np.concatenate(moved)
            model = self._solve(gram, moves, model_ids)
            if solve_ann or self._needs_ann(False):
                model.solve()
            with self._lock.write():
                self._gram, self._moves_total, self._model = gram, moves, model
                self.fitted = True
                self._changed()
        return self

    def _take_counts(
        self,
    ) -> tuple[sp.csr_matrix, list[sp.csr_matrix], list[np.ndarray], np.ndarray]:
        """Counts gathered so far and the id of each row now (under the write lock)."""
        n = self.items.n_rows
        parts, self._pairs = self._pairs, []
        moves, self._moves = [self._moves_total, *self._moves], []
        model_ids = np.full(n, NO_ID, np.int64)
        model_ids[self.items.live_rows()] = self.items.live_ids()
        return self._gram, parts, moves, model_ids

    def _solve(self, gram: sp.csr_matrix, moves: np.ndarray, model_ids: np.ndarray) -> ItemModel:
        n, c = len(model_ids), self.config
        if not n:
            return ItemModel(self._model.weights, self._model.transitions, model_ids)
        weights = item_weights(gram, l2=c.l2, neighbors=c.neighbors, max_dense=c.max_dense_items)
        transitions = transition_matrix(moves[:, 0], moves[:, 1], n)
        pending = None
        if c.embedding_dim and n > 2 and gram.nnz:
            pending = (gram, c.embedding_dim, self.seed, c.max_dense_items)
        return ItemModel(weights, transitions, model_ids, pending=pending)

    def refresh_pending_counts(self) -> None:
        """Fold counts gathered since the last refresh into the Gram matrix (no re-solve)."""
        with self._refresh_lock, self._lock.write():
            self._fold_pending()

    def _fold_pending(self) -> None:
        """``refresh_pending_counts`` for a caller holding both locks."""
        if self._pairs:
            self._model.solve()  # a pending solve would keep the old counts alive
        self._gram = _folded(self._gram, self._pairs, self.items.n_rows)
        self._pairs = []
        if self._moves:
            self._moves_total = np.concatenate([self._moves_total, *self._moves])
            self._moves = []

    @property
    def weights(self) -> sp.csr_matrix:
        """Item-item weights (row = history item, column = candidate) of the last refresh."""
        return self._model.weights

    @property
    def transitions(self) -> sp.csr_matrix:
        return self._model.transitions

    @property
    def model_ids(self) -> np.ndarray:
        """The id each item row held when the model was solved (min int64 for none)."""
        return self._model.model_ids

    @property
    def embeddings(self) -> np.ndarray:
        """Spectral item embeddings (items × ``embedding_dim``) as of the last ``refresh``."""
        return self._model.embeddings

    @embeddings.setter
    def embeddings(self, vectors: np.ndarray) -> None:
        self._model = self._model.with_embeddings(vectors)

    @property
    def ann(self) -> AnnIndex | None:
        """The ANN index over :attr:`embeddings` (``None`` without embeddings)."""
        return self._model.ann

    @ann.setter
    def ann(self, index: AnnIndex | None) -> None:
        self._model = self._model.with_embeddings(self._model.embeddings, index)

    @property
    def _ann_gram(self) -> sp.csr_matrix | None:
        """Counts the embeddings are still to be solved from (``None`` once solved)."""
        return self._model.pending_gram

    # ------------------------------------------------------------------ serving
    @contextmanager
    def _reading(self, reasons: bool) -> Iterator[ItemModel]:
        """Hold the read lock with the current model, its embeddings solved if used."""
        while True:
            model = self._model
            if self._needs_ann(reasons):
                model.solve()  # outside the lock: a first solve must not stall writers
            with self._lock.read():
                if self._model is not model:
                    continue  # refresh swapped models meanwhile: serve the new one
                if not self.fitted:
                    raise NotFittedError("call fit() before recommend()")
                yield model
                return

    def recommend(
        self, user_ids: npt.ArrayLike, k: int = 20, exclude_seen: bool = True
    ) -> np.ndarray:
        """Top-``k`` item ids per user, best first, padded with -1.

        Unknown users get the cold-start feed (trending, then popular, plus fresh items
        when exploration is on).
        """
        self._check_ready(k)
        ids = _as_ids(user_ids)
        out = np.full((len(ids), k), PAD, np.int64)
        # Large catalogues score each user on candidates; the lock is taken per step
        # so that a long batch does not hold writers back.
        step = 1 if self.items.n_rows >= CANDIDATES_FROM else _BATCH
        for start in range(0, len(ids), step):
            with self._reading(reasons=False) as model:
                rows = self.users.rows(ids[start : start + step])
                chosen, _, _ = self._feed(model, rows, k, exclude_seen, reasons=False)
                out[start : start + step] = self._to_ids(chosen)
        return out

    def recommend_with_reasons(
        self, user_id: int, k: int = 10, exclude_seen: bool = True, *, personalised: bool = True
    ) -> tuple[np.ndarray, np.ndarray, list[list[Reason]]]:
        """(item ids, scores, reasons per item) for one user: "why am I seeing this".

        ``personalised=False`` is the user's opt-out of profiling (DSA Art. 38): the
        same feed as :meth:`popular`, and nothing of the user's history is read.
        """
        self._check_ready(k)
        if not personalised:
            return self.popular(k)
        with self._reading(reasons=True) as model:
            rows = self.users.rows(_as_ids([user_id]))
            return self._explained_feed(model, rows, k, exclude_seen, None)

    def popular(
        self, k: int = 20, exclude: npt.ArrayLike = ()
    ) -> tuple[np.ndarray, np.ndarray, list[list[Reason]]]:
        """The non-personalised feed (DSA Art. 38): (item ids, scores, reasons).

        Trending, then popular, eligible items (plus fresh ones when exploration is on),
        under the same caps as every feed: the cold-start feed, which reads no user's
        history. ``exclude`` lists item ids not to show (say, the pages already served).
        """
        self._check_ready(k)
        ids = _as_ids(exclude)
        with self._reading(reasons=False) as model:
            hidden = self.items.rows(ids)
            rows = np.array([-1], np.int64)
            return self._explained_feed(model, rows, k, False, hidden[hidden >= 0])

    def explain(self, user_id: int, item_id: int, *, personalised: bool = True) -> list[Reason]:
        """Why this item is in this user's feed ("why am I seeing this"), from the state now.

        The reasons :meth:`recommend_with_reasons` gives the item at this moment, whether
        or not it still makes the top ``k``. Raises :class:`UnknownItemError` for an item
        id the engine does not know; ``personalised=False`` explains the :meth:`popular`
        feed.
        """
        with self._reading(reasons=True) as model:
            item = int(self.items.rows(_as_ids([item_id]))[0])
            if item < 0:
                raise UnknownItemError(f"item {item_id} is unknown to the recommender")
            user = int(self.users.rows(_as_ids([user_id]))[0]) if personalised else -1
            bg = self._background_now(model)
            with_ann = self._needs_ann(True)
            parts = self._candidate_parts(
                model, user, bg, with_ann, pool=0, extra=np.array([item], np.int64)
            )
            return self._reasons(model, parts, bg, np.searchsorted(parts.cols, [item]))[0]

    def _explained_feed(
        self,
        model: ItemModel,
        user_rows: np.ndarray,
        k: int,
        exclude_seen: bool,
        hidden: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, list[list[Reason]]]:
        reasons_needed = bool(user_rows[0] >= 0)  # a stranger has no ANN profile
        chosen, scores, parts = self._feed(
            model, user_rows, k, exclude_seen, reasons=reasons_needed, hidden=hidden
        )
        bg = self._background_now(model)
        shown = np.flatnonzero(chosen[0] >= 0)
        found = self._reasons(model, parts, bg, np.searchsorted(parts.cols, chosen[0][shown]))
        reasons: list[list[Reason]] = [[] for _ in range(k)]
        for i, why in zip(shown, found, strict=True):
            reasons[i] = why
        return self._to_ids(chosen)[0], scores[0], reasons

    def _check_ready(self, k: int) -> None:
        if not self.fitted:
            raise NotFittedError("call fit() before recommend()")
        if not isinstance(k, int | np.integer) or k < 1:
            raise RecommendError(f"k must be a positive integer, got {k!r}")

    def _to_ids(self, rows: np.ndarray) -> np.ndarray:
        out = np.full(rows.shape, PAD, np.int64)
        valid = rows >= 0
        out[valid] = self.items.ids_at(rows[valid])
        return out

    # ------------------------------------------------------------------ ranker
    def _train_ranker(self, impressions: pd.DataFrame) -> MultiTaskRanker | None:
        """Fit the multi-task ranker on impressions scored by the state before them."""
        with self._reading(reasons=True) as model:
            found = self._impression_features(model, impressions)
        if found is None:
            return None
        x, frame = found
        labels = task_labels(frame, self.config.positive_watch_ratio)
        ranker = MultiTaskRanker(seed=self.seed, feature_names=list(FEATURES))
        try:
            ranker.fit(x, labels)
        except RecommendError:
            return None
        ranker.compile()  # now, not in the first feed request
        return ranker

    def _impression_features(
        self, model: ItemModel, impressions: pd.DataFrame
    ) -> tuple[np.ndarray, pd.DataFrame] | None:
        urows = self.users.rows(impressions["user_id"].to_numpy(np.int64))
        irows = self.items.rows(impressions["item_id"].to_numpy(np.int64))
        ok = (urows >= 0) & (irows >= 0) & (irows < model.n_items)
        if ok.sum() < 100:
            return None
        uniq, inv = np.unique(urows[ok], return_inverse=True)
        bg = self._background_now(model)
        x = np.zeros((int(ok.sum()), len(FEATURES)), np.float32)
        for start in range(0, len(uniq), _BATCH):
            parts = self._dense_parts(model, uniq[start : start + _BATCH], bg, with_ann=True)
            sel = (inv >= start) & (inv < start + _BATCH)
            x[sel] = self._pair_features(inv[sel] - start, irows[ok][sel], parts, bg)
        return x, impressions[ok]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the whole state to the directory ``path`` (npz + JSON, no pickle)."""
        with self._refresh_lock, self._lock.write():
            if not self.fitted:
                raise NotFittedError("call fit() before save()")
            save_state(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """A Recommender saved by :meth:`save`; a clear RecommendError for anything else."""
        return load_state(cls, Path(path))


def _folded(gram: sp.csr_matrix, parts: list[sp.csr_matrix], n: int) -> sp.csr_matrix:
    """``gram`` plus the count ``parts``, all as ``n × n``."""
    if len(parts) > 2:
        # Adding a part to a large Gram matrix costs its whole size: many small stream
        # batches are summed among themselves first. (Two, as ``fit`` makes, are added
        # as they are, so a fit gives the same sums as before.)
        total = resized(parts[0], n)
        for part in parts[1:]:
            total = total + resized(part, n)
        parts = [total]
    gram = resized(gram, n)
    for part in parts:
        gram = gram + resized(part, n)
    return gram.tocsr()


def _as_ids(user_ids: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(user_ids)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise RecommendError("user_ids must be a 1-D sequence of integer ids")
    return arr.astype(np.int64)

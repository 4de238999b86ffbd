"""The licensed short-video recommender: online state, candidate sources, ranking, reasons.

State lives in two collisionless tables (users, items) and grows with the stream:

* ``partial_fit`` folds time-ordered events into each user's recent positives,
  the seen pairs, item statistics and the proximity Gram / transition counts.
  The user's next recommendation reflects the event as soon as it returns.
* ``refresh`` re-solves the item-item weights and the ANN embeddings from the
  accumulated counts (seconds, not a retrain from raw data); ``fit`` is
  ``partial_fit`` of everything followed by ``refresh``.

Scoring a batch: item2item (+ transition) score over all items, plus blended
ANN / trending / following scores; if the data carried multi-task labels
(watch time, likes, shares, skips, hates), a :class:`MultiTaskRanker` re-scores
the best candidates. Then the re-ranker applies the seen filter, eligibility,
creator/topic caps and the exploration share.
"""

from __future__ import annotations

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
    grown,
    resized,
    unit_scaled,
)
from trustfeed.recommend._config import RecommenderConfig
from trustfeed.recommend._history import (
    RecentPositives,
    SeenPairs,
    pair_counts,
    push_with_pairs,
)
from trustfeed.recommend._itemitem import item_weights
from trustfeed.recommend._persist import load_state, save_state
from trustfeed.recommend._ranker import MultiTaskRanker
from trustfeed.recommend._reasons import Reason
from trustfeed.recommend._rerank import rerank
from trustfeed.recommend._signals import (
    ItemStats,
    event_weights,
    has_task_labels,
    negative_mask,
    task_labels,
)
from trustfeed.recommend._sources import (
    AnnIndex,
    item_embeddings,
    profile_matrix,
    transition_matrix,
)
from trustfeed.recommend._table import CollisionlessTable

_NO_ID = np.iinfo(np.int64).min
_BATCH = 512
_RANKER_POOL = 200  # candidates the multi-task ranker re-scores per user
_FEATURES = (
    "item2item",
    "transition",
    "ann",
    "trending",
    "log_views",
    "positive_rate",
    "negative_rate",
    "following",
    "log_age_s",
)


class Recommender:
    """Short-video "For You" recommender; see the module docstring.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 11],
    ...                    "timestamp": [1.0, 2.0, 1.0, 2.0, 3.0]})
    >>> rec = Recommender(seed=0, embedding_dim=0).fit(df)
    >>> rec.recommend([1], k=2).tolist()
    [[12, -1]]
    """

    def __init__(self, seed: int = 42, **params: Any) -> None:
        self.seed = int(seed)
        self.config = RecommenderConfig(**params)
        # Eligibility is policy, not learned state, so a refit keeps it; it is kept
        # by item id, not row, because rows are reused after expiry.
        self.blocked_ids = np.zeros(0, np.int64)  # never served
        self.allowed_ids = np.zeros(0, np.int64)  # served when not eligible_by_default
        self._eligibility_version = 0
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
        self._eligibility: tuple[int, int, np.ndarray] | None = None  # (version, n, mask)
        # Model, rebuilt by ``refresh``.
        self.weights = sp.csr_matrix((0, 0), dtype=np.float32)
        self.transitions = sp.csr_matrix((0, 0), dtype=np.float32)
        self._embeddings = np.zeros((0, 0), np.float32)
        self._ann: AnnIndex | None = None
        self._ann_gram: sp.csr_matrix | None = None  # counts the ANN is still to be solved from
        self.model_ids = np.zeros(0, np.int64)
        self.ranker: MultiTaskRanker | None = None
        self.fitted = False

    # ------------------------------------------------------------------ training
    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Learn from scratch: stream ``interactions`` in time order, then ``refresh``.

        With multi-task labels and ``train_ranker``, the last 15 % (by time) first
        serves as the ranker's training impressions, scored by the state before them.
        """
        events = self._prepare(interactions)
        self._reset()
        if items is not None:
            self.set_items(items)
        if self.config.train_ranker and has_task_labels(events) and len(events) >= 200:
            cut = int(len(events) * 0.85)
            self._ingest(events.iloc[:cut])
            self.refresh()
            self.ranker = self._train_ranker(events.iloc[cut:])
            self._ingest(events.iloc[cut:])
        else:
            self._ingest(events)
        self.refresh()
        return self

    def partial_fit(self, events: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Fold new time-ordered events into the live state; visible on return."""
        if items is not None:
            self.set_items(items)
        self._ingest(self._prepare(events))
        if not self.fitted:
            self.refresh()
        return self

    def _prepare(self, interactions: pd.DataFrame) -> pd.DataFrame:
        events = validate_interactions(interactions, source="interactions")
        return events.sort_values("timestamp", kind="stable").reset_index(drop=True)

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
            self._eligibility_version += 1  # freed rows will hold other ids

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
        rows, _ = self.users.remove(_as_ids(user_ids))
        self._clear_user_rows(rows)
        return len(rows)

    def set_items(self, items: pd.DataFrame) -> None:
        """Attach item metadata (``creator_id``, ``topic``); unknown ids are admitted."""
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

    def set_blocked(self, item_ids: npt.ArrayLike, blocked: bool = True) -> None:
        """Mark items (in)eligible by id, known to the model yet or not.

        Blocked items are never returned. ``blocked=False`` lifts a block and,
        with ``eligible_by_default=False``, is what makes an item servable at all.
        """
        ids = np.unique(np.asarray(item_ids, np.int64))
        if blocked:
            self.blocked_ids = np.union1d(self.blocked_ids, ids)
            self.allowed_ids = np.setdiff1d(self.allowed_ids, ids, assume_unique=True)
        else:
            self.blocked_ids = np.setdiff1d(self.blocked_ids, ids, assume_unique=True)
            self.allowed_ids = np.union1d(self.allowed_ids, ids)
        self._eligibility_version += 1

    def _servable(self, n: int) -> np.ndarray:
        """Rows whose current id is not blocked (and is allowed, in allow-list mode)."""
        cached = self._eligibility
        if cached is not None and cached[:2] == (self._eligibility_version, n):
            return cached[2]
        ids = _row_ids(self.items, n)
        mask = ~np.isin(ids, self.blocked_ids)
        if not self.config.eligible_by_default:
            mask &= np.isin(ids, self.allowed_ids)
        self._eligibility = (self._eligibility_version, n, mask)
        return mask

    def refresh(self) -> Self:
        """Re-solve item-item weights, transitions and ANN embeddings from the counts.

        The embeddings (an eigen-solve, a third of ml-100k's fit) are solved on first
        use: scores that blend them in, the ranker, reasons, ``save``.
        """
        self._ann_gram = None
        self.refresh_pending_counts()
        n = self.items.n_rows
        moves = self._moves_total
        c = self.config
        if n:
            self.weights = item_weights(
                self._gram, l2=c.l2, neighbors=c.neighbors, max_dense=c.max_dense_items
            )
            self.transitions = transition_matrix(moves[:, 0], moves[:, 1], n)
        self._embeddings, self._ann = np.zeros((n, 0), np.float32), None
        if c.embedding_dim and n > 2 and self._gram.nnz:
            self._ann_gram = self._gram
        self.model_ids = np.full(n, _NO_ID, np.int64)
        self.model_ids[self.items.live_rows()] = self.items.live_ids()
        self.fitted = True
        return self

    @property
    def embeddings(self) -> np.ndarray:
        """Spectral item embeddings (items × ``embedding_dim``) as of the last ``refresh``."""
        self._solve_ann()
        return self._embeddings

    @embeddings.setter
    def embeddings(self, vectors: np.ndarray) -> None:
        self._embeddings, self._ann_gram = vectors, None

    @property
    def ann(self) -> AnnIndex | None:
        """The ANN index over :attr:`embeddings` (``None`` without embeddings)."""
        self._solve_ann()
        return self._ann

    @ann.setter
    def ann(self, index: AnnIndex | None) -> None:
        self._ann, self._ann_gram = index, None

    def _solve_ann(self) -> None:
        gram, self._ann_gram = self._ann_gram, None
        if gram is not None:
            c = self.config
            self._embeddings = item_embeddings(gram, c.embedding_dim, self.seed, c.max_dense_items)
            self._ann = AnnIndex.build(self._embeddings)

    def _needs_ann(self, reasons: bool) -> bool:
        """Whether scoring reads the ANN source (with weight 0 and no ranker it adds 0)."""
        c = self.config
        wanted = reasons or c.ann_weight > 0 or self.ranker is not None
        return bool(c.ann_candidates) and wanted

    # ------------------------------------------------------------------ serving
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
        for start in range(0, len(ids), _BATCH):
            rows = self.users.rows(ids[start : start + _BATCH])
            chosen, _, _ = self._feed(rows, k, exclude_seen, reasons=False)
            out[start : start + _BATCH] = self._to_ids(chosen)
        return out

    def recommend_with_reasons(
        self, user_id: int, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray, list[list[Reason]]]:
        """(item ids, scores, reasons per item) for one user: "why am I seeing this"."""
        self._check_ready(k)
        rows = self.users.rows(_as_ids([user_id]))
        chosen, scores, parts = self._feed(rows, k, exclude_seen, reasons=True)
        items = chosen[0]
        reasons = [self._reasons(rows[0], int(r), parts) if r >= 0 else [] for r in items]
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

    def _eligible(self) -> np.ndarray:
        """Item rows that may be served: live under the same id as in the model, not blocked."""
        n = self.items.n_rows
        ok = np.zeros(n, bool)
        live = self.items.live_rows()
        ok[live] = True
        m = min(n, len(self.model_ids))
        in_model = np.zeros(n, bool)
        in_model[:m] = self.model_ids[:m] == np.where(ok[:m], _row_ids(self.items, m), _NO_ID)
        fresh = self._fresh_mask(n)
        return ok & (in_model | fresh) & self._servable(n)

    def _fresh_mask(self, n: int) -> np.ndarray:
        self.stats._ensure(n)
        c = self.config
        recent = self.stats.first_seen[:n] >= self.stats.clock - c.fresh_window_s
        return recent & (self.stats.views[:n] < c.fresh_max_views)

    def _parts(self, user_rows: np.ndarray, with_ann: bool = True) -> dict[str, Any]:
        """Per-source scores (users × item rows) and the profile behind them."""
        n_all = self.items.n_rows
        n_model = self.weights.shape[0]
        safe = np.where(user_rows >= 0, user_rows, np.iinfo(np.int64).max)
        items, weights, rank = self.recent.recent(safe)
        items = np.where(items < n_model, items, -1)
        prof = profile_matrix(items, weights, rank, self.config.recency, n_model)
        i2i = np.zeros((len(user_rows), n_all), np.float32)
        trans = np.zeros_like(i2i)
        ann = np.zeros_like(i2i)
        if n_model:
            i2i[:, :n_model] = (prof @ self.weights).toarray()
            last = items[:, 0]
            has = last >= 0
            if has.any() and self.config.transition > 0:
                trans[has, :n_model] = self.transitions[last[has]].toarray()
        index = self.ann if with_ann and self.config.ann_candidates else None
        if index is not None:
            queries = prof @ self._embeddings
            sims, found = index.search(queries, self.config.ann_candidates)
            active = np.asarray(prof.sum(axis=1)).ravel() > 0
            r, c = np.nonzero((found >= 0) & active[:, None])
            ann[r, found[r, c]] = sims[r, c] / np.maximum(np.abs(sims[r, :1]).ravel(), 1e-9)
        following = np.zeros_like(i2i)
        if self.follows.base.nnz and len(self.stats.creator):
            creator = self.stats.creator[:n_all]
            fm = self.follows.matrix(
                np.where(user_rows >= 0, user_rows, 1 << 40), int(creator.max()) + 1
            )
            has_c = creator >= 0
            following[:, has_c] = fm[:, creator[has_c]].toarray()
        views = (
            self.stats.views[:n_all]
            if len(self.stats.views) >= n_all
            else grown(self.stats.views, n_all, 0.0)
        )
        return {
            "profile": prof, "recent_items": items, "item2item": i2i, "transition": trans,
            "ann": ann, "following": following, "trending": self.stats.trending(n_all),
            "popular": np.log1p(views[:n_all]) / max(np.log1p(views[:n_all]).max(initial=0), 1.0),
        }  # fmt: skip

    def _blend(self, parts: dict[str, Any]) -> np.ndarray:
        c = self.config
        score = (
            parts["item2item"]
            + c.transition * parts["transition"]
            + c.ann_weight * parts["ann"]
            + c.following_weight * parts["following"]
            + c.trending_weight * parts["trending"][None, :]
        )
        cold = ~(np.abs(parts["item2item"]).max(axis=1) > 0)
        score[cold] += parts["trending"][None, :]
        # A tiny popularity term breaks ties (and pads short feeds) deterministically.
        return score + 1e-4 * parts["popular"][None, :]

    def _feed(
        self, user_rows: np.ndarray, k: int, exclude_seen: bool, *, reasons: bool
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        parts = self._parts(user_rows, with_ann=self._needs_ann(reasons))
        score = self._blend(parts).astype(np.float64)
        score[:, ~self._eligible()] = -np.inf
        if exclude_seen:
            seen = self.seen.matrix(np.where(user_rows >= 0, user_rows, 1 << 40), score.shape[1])
            r, c = seen.nonzero()
            score[r, c] = -np.inf
        if self.ranker is not None:
            score = self._rank(user_rows, score, parts)
        fresh = self._fresh_mask(score.shape[1]) & np.isfinite(score).any(axis=0)
        chosen, chosen_scores = rerank(
            score, k,
            creator=grown(self.stats.creator, score.shape[1], -1)[: score.shape[1]],
            topic=grown(self.topic, score.shape[1], -1)[: score.shape[1]],
            creator_cap=self.config.creator_cap, topic_cap=self.config.topic_cap,
            explore=fresh, explore_share=self.config.explore_share,
            order=self.stats.first_seen[: score.shape[1]],
        )  # fmt: skip
        return chosen, chosen_scores, parts

    # ------------------------------------------------------------------ ranker
    def _pair_features(self, rows: np.ndarray, cols: np.ndarray, parts: dict[str, Any]):
        s = self.stats
        n = self.items.n_rows
        s._ensure(n)
        prior = max(float(s.positives[:n].sum()) / max(float(s.views[:n].sum()), 1.0), 1e-3)
        neg_prior = max(float(s.negatives[:n].sum()) / max(float(s.views[:n].sum()), 1.0), 1e-3)
        views = s.views[cols]
        return np.column_stack(
            [
                parts["item2item"][rows, cols],
                parts["transition"][rows, cols],
                parts["ann"][rows, cols],
                parts["trending"][cols],
                np.log1p(views),
                (s.positives[cols] + 10 * prior) / (views + 10),
                (s.negatives[cols] + 10 * neg_prior) / (views + 10),
                parts["following"][rows, cols],
                np.log1p(np.maximum(s.clock - s.first_seen[cols], 0.0)),
            ]
        ).astype(np.float32)

    def _rank(self, user_rows: np.ndarray, score: np.ndarray, parts: dict[str, Any]):
        assert self.ranker is not None
        pool = min(_RANKER_POOL, score.shape[1])
        top = np.argpartition(-score, pool - 1, axis=1)[:, :pool]
        rows = np.repeat(np.arange(len(user_rows)), pool)
        cols = top.ravel()
        finite = np.isfinite(score[rows, cols])
        # Outside the pool items keep their order, below every ranked one, and stay
        # finite so that exploration can still pick them.
        ranked = np.where(np.isfinite(score), score - 1e6, -np.inf)
        if finite.any():
            r, c = rows[finite], cols[finite]
            feats = self._pair_features(r, c, parts)
            learned = np.full(score.shape, np.nan)
            learned[r, c] = self.ranker.score(feats)
            w = self.config.ranker_weight
            ranked[r, c] = (1 - w) * unit_scaled(score, r, c) + w * unit_scaled(learned, r, c)
        return ranked

    def _train_ranker(self, impressions: pd.DataFrame) -> MultiTaskRanker | None:
        """Fit the multi-task ranker on impressions scored by the state before them."""
        urows = self.users.rows(impressions["user_id"].to_numpy(np.int64))
        irows = self.items.rows(impressions["item_id"].to_numpy(np.int64))
        ok = (urows >= 0) & (irows >= 0) & (irows < self.weights.shape[0])
        if ok.sum() < 100:
            return None
        frame = impressions[ok]
        uniq, inv = np.unique(urows[ok], return_inverse=True)
        feats = []
        for start in range(0, len(uniq), _BATCH):
            parts = self._parts(uniq[start : start + _BATCH])
            sel = (inv >= start) & (inv < start + _BATCH)
            feats.append(
                (np.flatnonzero(sel), self._pair_features(inv[sel] - start, irows[ok][sel], parts))
            )
        x = np.zeros((len(frame), len(_FEATURES)), np.float32)
        for idx, f in feats:
            x[idx] = f
        labels = task_labels(frame, self.config.positive_watch_ratio)
        ranker = MultiTaskRanker(seed=self.seed, feature_names=list(_FEATURES))
        try:
            return ranker.fit(x, labels)
        except RecommendError:
            return None

    # ------------------------------------------------------------------ reasons
    def _reasons(self, user_row: int, item: int, parts: dict[str, Any]) -> list[Reason]:
        c = self.config
        out: list[Reason] = []
        i2i = float(parts["item2item"][0, item])
        if i2i > 0:
            prof = parts["profile"][0]
            hist = prof.indices
            contrib = prof.data * np.asarray(self.weights[hist, item].todense()).ravel()
            because = (
                int(self.items.ids_at(np.array([hist[np.argmax(contrib)]]))[0])
                if len(hist)
                else None
            )
            out.append(Reason("item2item", f"because you watched {because}", i2i, because))
        if c.transition > 0 and parts["transition"][0, item] > 0:
            out.append(
                Reason(
                    "item2item",
                    "often watched next after your latest video",
                    c.transition * float(parts["transition"][0, item]),
                )
            )
        if parts["ann"][0, item] > 0:
            out.append(
                Reason(
                    "ann",
                    "close to your recent interests",
                    c.ann_weight * float(parts["ann"][0, item]),
                )
            )
        if parts["following"][0, item] > 0:
            out.append(Reason("following", "from a creator you follow", c.following_weight))
        if self._fresh_mask(self.items.n_rows)[item]:
            out.append(Reason("fresh", "a new upload we are trying out", 0.0))
        trend = float(parts["trending"][item])
        if trend > 0.2 or not out:
            text = "trending now" if trend > 0.2 else "popular on the platform"
            out.append(Reason("trending" if trend > 0.2 else "popular", text, trend))
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the whole state to the directory ``path`` (npz + JSON, no pickle)."""
        if not self.fitted:
            raise NotFittedError("call fit() before save()")
        save_state(self, Path(path))

    def refresh_pending_counts(self) -> None:
        """Fold counts gathered since the last refresh into the Gram matrix (no re-solve)."""
        if self._pairs and self._ann_gram is not None:
            self._solve_ann()  # a pending snapshot would keep the old counts alive
        n = self.items.n_rows
        gram = resized(self._gram, n)
        for part in self._pairs:
            gram = gram + resized(part, n)
        self._gram, self._pairs = gram.tocsr(), []
        if self._moves:
            self._moves_total = np.concatenate([self._moves_total, *self._moves])
            self._moves = []

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """A Recommender saved by :meth:`save`; a clear RecommendError for anything else."""
        return load_state(cls, Path(path))


def _as_ids(user_ids: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(user_ids)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise RecommendError("user_ids must be a 1-D sequence of integer ids")
    return arr.astype(np.int64)


def _row_ids(table: CollisionlessTable, n: int) -> np.ndarray:
    ids = np.full(n, _NO_ID, np.int64)
    live = table.live_rows()
    live = live[live < n]
    ids[live] = table.ids_at(live)
    return ids

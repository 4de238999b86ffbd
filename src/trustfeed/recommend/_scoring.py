"""Serving: per-source scores, the blend, eligibility, the ranker, the feed, reasons.

Two ways to the same feed, behind one API (STYLE: a fast path beside a plain
one): :meth:`Scoring._dense_parts` scores a batch of users over every item row,
:meth:`Scoring._candidate_parts` one user over the rows that can matter (see
``_candidates``). From the parts on, one code path runs over their columns.

Everything here only reads the recommender's state; callers hold its read lock.
The one thing written is the per-version background cache, a reference swap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from trustfeed.recommend._base import unit_scaled
from trustfeed.recommend._candidates import (
    NO_ID,
    Background,
    Policy,
    is_member,
    merged,
    spread,
    unique_rows,
)
from trustfeed.recommend._config import RecommenderConfig
from trustfeed.recommend._history import RecentPositives, SeenPairs
from trustfeed.recommend._model import ItemModel
from trustfeed.recommend._ranker import MultiTaskRanker
from trustfeed.recommend._reasons import Reason
from trustfeed.recommend._rerank import rerank, top_columns
from trustfeed.recommend._signals import ItemStats
from trustfeed.recommend._sources import profile_matrix
from trustfeed.recommend._table import CollisionlessTable

RANKER_POOL = 200  # candidates the multi-task ranker re-scores per user
FEATURES = (
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
#: From this many item rows one user is scored on candidates, not on every row:
#: below it the dense batch path is as fast and needs no per-user loop.
CANDIDATES_FROM = 20_000
_NO_USER = 1 << 40  # a row past every table, for unknown users


@dataclass
class Parts:
    """Per-source scores of a batch of users over the item rows ``cols`` (ascending)."""

    cols: np.ndarray
    profile: sp.csr_matrix  # users × model rows
    item2item: np.ndarray  # users × cols, like the four below
    transition: np.ndarray
    ann: np.ndarray
    following: np.ndarray
    trending: np.ndarray  # per col
    popular: np.ndarray  # per col


def _rows_or_none(rows: np.ndarray | None) -> np.ndarray:
    return np.zeros(0, np.int64) if rows is None else rows.astype(np.int64)


class Scoring:
    """Mixin of :class:`~trustfeed.recommend.Recommender`: what one read computes."""

    seed: int
    config: RecommenderConfig
    items: CollisionlessTable
    recent: RecentPositives
    seen: SeenPairs
    follows: SeenPairs
    stats: ItemStats
    topic: np.ndarray
    topic_names: list[str]
    blocked_ids: np.ndarray
    allowed_ids: np.ndarray
    ranker: MultiTaskRanker | None
    _model: ItemModel
    _version: int
    _meta_version: int
    _background: Background | None
    _creator_items: tuple[int, sp.csr_matrix] | None
    _cache_lock: threading.Lock

    # ------------------------------------------------------------------ the feed
    def _feed(
        self,
        model: ItemModel,
        user_rows: np.ndarray,
        k: int,
        exclude_seen: bool,
        *,
        reasons: bool,
        hidden: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, Parts]:
        """(item rows, scores, parts) of each user's feed; ``hidden`` rows are never served."""
        bg = self._background_now(model)
        with_ann = self._needs_ann(reasons)
        if len(user_rows) == 1 and bg.n >= CANDIDATES_FROM:
            seen = self._seen_rows(int(user_rows[0]), exclude_seen, hidden)
            pool, n_fresh = self._pool_sizes(k)
            parts = self._candidate_parts(
                model, int(user_rows[0]), bg, with_ann, pool=pool, n_fresh=n_fresh, seen=seen
            )
            seen_at = [(np.zeros(len(seen), np.int64), seen)]
        else:
            parts = self._dense_parts(model, user_rows, bg, with_ann)
            seen_at = self._dense_seen(user_rows, parts.cols, exclude_seen, hidden)
        chosen, scores = self._choose(user_rows, parts, bg, k, seen_at)
        return chosen, scores, parts

    def _choose(
        self,
        user_rows: np.ndarray,
        parts: Parts,
        bg: Background,
        k: int,
        seen_at: list[tuple[np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:
        cols = parts.cols
        score = self._blend(parts).astype(np.float64)
        score[:, ~bg.at("eligible", cols)] = -np.inf
        for users, rows in seen_at:  # (batch position, item row) pairs not to show
            inside = is_member(rows, cols)
            score[users[inside], np.searchsorted(cols, rows[inside])] = -np.inf
        if self.ranker is not None:
            score = self._rank(user_rows, score, parts, bg)
        c = self.config
        picked, picked_scores = rerank(
            score, k,
            creator=bg.at("creator", cols), topic=bg.at("topic", cols),
            creator_cap=c.creator_cap, topic_cap=c.topic_cap,
            explore=bg.at("fresh", cols) & np.isfinite(score).any(axis=0),
            explore_share=c.explore_share, order=bg.at("first_seen", cols),
        )  # fmt: skip
        chosen = np.full(picked.shape, -1, np.int64)
        chosen[picked >= 0] = cols[picked[picked >= 0]]
        return chosen, picked_scores

    def _pool_sizes(self, k: int) -> tuple[int, int]:
        """(rows by score that can reach the feed, fresh rows exploration may add)."""
        c = self.config
        n_explore = round(c.explore_share * k)
        capped = c.creator_cap or c.topic_cap
        pool = max(k * 4 + n_explore if capped else k, RANKER_POOL if self.ranker else 0)
        return pool, (k + n_explore if n_explore else 0)

    def _needs_ann(self, reasons: bool) -> bool:
        """Whether scoring reads the ANN source (with weight 0 and no ranker it adds 0)."""
        c = self.config
        wanted = reasons or c.ann_weight > 0 or self.ranker is not None
        return bool(c.ann_candidates) and wanted

    # ------------------------------------------------------------------ parts
    def _profile(self, model: ItemModel, user_rows: np.ndarray) -> tuple[sp.csr_matrix, Any]:
        """(users × model rows profile, each user's latest positive still in the model)."""
        n_model = model.n_items
        safe = np.where(user_rows >= 0, user_rows, np.iinfo(np.int64).max)
        items, weights, rank = self.recent.recent(safe)
        items = np.where(items < n_model, items, -1)
        return profile_matrix(items, weights, rank, self.config.recency, n_model), items[:, 0]

    def _dense_parts(
        self, model: ItemModel, user_rows: np.ndarray, bg: Background, with_ann: bool
    ) -> Parts:
        """Every source over every item row (the plain reference path; batches)."""
        n_all, n_model = bg.n, model.n_items
        prof, last = self._profile(model, user_rows)
        i2i = np.zeros((len(user_rows), n_all), np.float32)
        trans, ann, following = np.zeros_like(i2i), np.zeros_like(i2i), np.zeros_like(i2i)
        if n_model:
            i2i[:, :n_model] = (prof @ model.weights).toarray()
            has = last >= 0
            if has.any() and self.config.transition > 0:
                trans[has, :n_model] = model.transitions[last[has]].toarray()
        index = model.ann if with_ann and self.config.ann_candidates else None
        if index is not None:
            sims, found = index.search(prof @ model.embeddings, self.config.ann_candidates)
            active = np.asarray(prof.sum(axis=1)).ravel() > 0
            r, c = np.nonzero((found >= 0) & active[:, None])
            ann[r, found[r, c]] = sims[r, c] / np.maximum(np.abs(sims[r, :1]).ravel(), 1e-9)
        creator = bg.whole("creator")
        if not self.follows.is_empty():
            fm = self.follows.matrix(
                np.where(user_rows >= 0, user_rows, _NO_USER), int(creator.max(initial=-1)) + 1
            )
            has_c = creator >= 0
            following[:, has_c] = fm[:, creator[has_c]].toarray()
        trending, popular = bg.whole("trending"), bg.whole("popular")
        return Parts(np.arange(n_all), prof, i2i, trans, ann, following, trending, popular)

    def _candidate_parts(
        self,
        model: ItemModel,
        user_row: int,
        bg: Background,
        with_ann: bool,
        *,
        pool: int,
        n_fresh: int = 0,
        seen: np.ndarray | None = None,
        extra: np.ndarray | None = None,
    ) -> Parts:
        """One user's parts over the rows any source names (and ``extra``), the
        ``n_fresh`` newest fresh rows and, unless ``pool`` of those already outscore
        every other row, the ``pool`` best-background rows; ``seen`` rows excluded
        from the last two (see ``_candidates``)."""
        prof, last = self._profile(model, np.array([user_row]))
        named = self._named(model, user_row, prof, int(last[0]), with_ann)
        hidden = unique_rows(np.zeros(0, np.int64) if seen is None else seen)
        others = [rows for name, (rows, _) in named.items() if name != "item2item"]
        some = merged(named["item2item"][0], np.concatenate([*others, _rows_or_none(extra)]))
        newest = bg.newest(n_fresh, hidden) if n_fresh else np.zeros(0, np.int64)
        parts = self._spread(merged(some, newest), prof, named, bg)
        cold = not (np.abs(named["item2item"][1]).max(initial=0) > 0)
        if pool and not self._above_background(parts, bg, pool, hidden, cold):
            best = bg.best(cold, pool, some, hidden)
            parts = self._spread(merged(parts.cols, best), prof, named, bg)
        return parts

    def _spread(
        self,
        cols: np.ndarray,
        prof: sp.csr_matrix,
        named: dict[str, tuple[np.ndarray, np.ndarray]],
        bg: Background,
    ) -> Parts:
        rows = {name: spread(cols, *named[name]) for name in named}
        return Parts(
            cols, prof, rows["item2item"], rows["transition"], rows["ann"], rows["following"],
            bg.at("trending", cols), bg.at("popular", cols),
        )  # fmt: skip

    def _above_background(
        self, parts: Parts, bg: Background, pool: int, hidden: np.ndarray, cold: bool
    ) -> bool:
        """Whether ``pool`` servable candidates outscore every row no source names (whose
        score is its background, at most the bound): then no such row can enter."""
        if len(parts.cols) < pool:
            return False
        score = self._blend(parts)[0]
        servable = bg.at("eligible", parts.cols) & ~is_member(parts.cols, hidden)
        bound = bg.cold_bound if cold else bg.warm_bound
        return int(np.count_nonzero(score[servable] > bound)) >= pool

    def _named(
        self, model: ItemModel, user_row: int, prof: sp.csr_matrix, last: int, with_ann: bool
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(item rows, score) of each source for one user, where it is non-zero."""
        none = (np.zeros(0, np.int64), np.zeros(0, np.float32))
        out = dict.fromkeys(("item2item", "transition", "ann", "following"), none)
        if model.n_items:
            i2i = (prof @ model.weights).tocsr()
            i2i.sort_indices()  # rows ascending: the candidate set is merged into them
            out["item2item"] = (i2i.indices.astype(np.int64), i2i.data)
            if last >= 0 and self.config.transition > 0:
                t = model.transitions
                lo, hi = t.indptr[last], t.indptr[last + 1]
                out["transition"] = (t.indices[lo:hi].astype(np.int64), t.data[lo:hi])
        index = model.ann if with_ann and self.config.ann_candidates else None
        if index is not None and prof.nnz and prof.sum() > 0:
            sims, found = index.search(prof @ model.embeddings, self.config.ann_candidates)
            ok = found[0] >= 0
            scale = np.maximum(np.abs(sims[0, :1]), 1e-9)
            out["ann"] = (found[0][ok], (sims[0][ok] / scale).astype(np.float32))
        followed = self.follows.row(user_row) if user_row >= 0 else np.zeros(0, np.int64)
        if len(followed):
            rows = self._items_by(np.unique(followed))
            out["following"] = (rows, np.ones(len(rows), np.float32))
        return out

    def _items_by(self, creators: np.ndarray) -> np.ndarray:
        """Item rows by these creators (the creator → items index of this metadata)."""
        cached = self._creator_items
        if cached is None or cached[0] != self._meta_version:
            creator = self.stats.creator[: self.items.n_rows]
            has = np.flatnonzero(creator >= 0)
            index = sp.csr_matrix(
                (np.ones(len(has), np.int8), (creator[has], has)),
                shape=(int(creator.max(initial=-1)) + 1, len(creator)),
            )
            cached = self._creator_items = (self._meta_version, index)
        index = cached[1]
        creators = creators[creators < index.shape[0]]
        return unique_rows(index[creators].indices.astype(np.int64))

    def _seen_rows(
        self, user_row: int, exclude_seen: bool, hidden: np.ndarray | None
    ) -> np.ndarray:
        seen = self.seen.row(user_row) if exclude_seen and user_row >= 0 else np.zeros(0, np.int64)
        return seen if hidden is None else np.concatenate([seen, hidden])

    def _dense_seen(
        self, user_rows: np.ndarray, cols: np.ndarray, exclude_seen: bool, hidden: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        if exclude_seen:
            seen = self.seen.matrix(np.where(user_rows >= 0, user_rows, _NO_USER), len(cols))
            r, c = seen.nonzero()
            out.append((r.astype(np.int64), c.astype(np.int64)))
        if hidden is not None and len(hidden):
            users = np.repeat(np.arange(len(user_rows)), len(hidden))
            out.append((users, np.tile(hidden, len(user_rows))))
        return out

    def _blend(self, parts: Parts) -> np.ndarray:
        c = self.config
        score = (
            parts.item2item
            + c.transition * parts.transition
            + c.ann_weight * parts.ann
            + c.following_weight * parts.following
            + c.trending_weight * parts.trending[None, :]
        )
        cold = ~(np.abs(parts.item2item).max(axis=1, initial=0) > 0)
        score[cold] += parts.trending[None, :]
        # A tiny popularity term breaks ties (and pads short feeds) deterministically.
        return score + 1e-4 * parts.popular[None, :]

    # ------------------------------------------------------------------ background
    def _background_now(self, model: ItemModel) -> Background:
        """The background of the current state version, built by the first reader."""
        bg = self._background
        if bg is not None and bg.version == self._version:
            return bg
        with self._cache_lock:
            bg = self._background
            if bg is None or bg.version != self._version:
                bg = self._background = self._build_background(model)
            return bg

    def _build_background(self, model: ItemModel) -> Background:
        c = self.config
        policy = Policy(
            ids=partial(self.items.ids_or, fill=NO_ID),
            model_ids=model.model_ids,
            blocked=self.blocked_ids,
            allowed=None if c.eligible_by_default else self.allowed_ids,
            fresh_window_s=c.fresh_window_s,
            fresh_max_views=c.fresh_max_views,
            trending_weight=c.trending_weight,
        )
        return Background(self._version, self.items.n_rows, self.stats, self.topic, policy)

    # ------------------------------------------------------------------ ranker
    def _pair_features(
        self, rows: np.ndarray, js: np.ndarray, parts: Parts, bg: Background
    ) -> np.ndarray:
        """Ranker features of (batch position, column) pairs."""
        s = self.stats
        prior, neg_prior = bg.priors
        items = parts.cols[js]
        views = s.views[items]
        return np.column_stack(
            [
                parts.item2item[rows, js],
                parts.transition[rows, js],
                parts.ann[rows, js],
                parts.trending[js],
                np.log1p(views),
                (s.positives[items] + 10 * prior) / (views + 10),
                (s.negatives[items] + 10 * neg_prior) / (views + 10),
                parts.following[rows, js],
                np.log1p(np.maximum(s.clock - s.first_seen[items], 0.0)),
            ]
        ).astype(np.float32)

    def _rank(
        self, user_rows: np.ndarray, score: np.ndarray, parts: Parts, bg: Background
    ) -> np.ndarray:
        assert self.ranker is not None
        pool = min(RANKER_POOL, score.shape[1])
        top = top_columns(score, pool)
        rows = np.repeat(np.arange(len(user_rows)), pool)
        cols = top.ravel()
        finite = np.isfinite(score[rows, cols])
        # Outside the pool items keep their order, below every ranked one, and stay
        # finite so that exploration can still pick them.
        ranked = np.where(np.isfinite(score), score - 1e6, -np.inf)
        if finite.any():
            r, c = rows[finite], cols[finite]
            feats = self._pair_features(r, c, parts, bg)
            learned = np.full(score.shape, np.nan)
            learned[r, c] = self.ranker.score(feats)
            w = self.config.ranker_weight
            ranked[r, c] = (1 - w) * unit_scaled(score, r, c) + w * unit_scaled(learned, r, c)
        return ranked

    # ------------------------------------------------------------------ reasons
    def _reasons(
        self, model: ItemModel, parts: Parts, bg: Background, js: np.ndarray
    ) -> list[list[Reason]]:
        """Reasons for the first user of ``parts`` at the columns ``js``."""
        because = self._because(model, parts, js)
        return [self._reasons_at(parts, bg, int(j), b) for j, b in zip(js, because, strict=True)]

    def _because(self, model: ItemModel, parts: Parts, js: np.ndarray) -> list[int | None]:
        """For each column, the history item that adds most to its item2item score."""
        hist, weight = parts.profile[0].indices, parts.profile[0].data
        scored = parts.item2item[0, js] > 0
        if not len(hist) or not scored.any():
            return [None] * len(js)
        rows = parts.cols[js[scored]]
        contrib = weight[:, None] * model.weights[hist][:, rows].toarray()
        best = self.items.ids_at(hist[np.argmax(contrib, axis=0)])
        out: list[int | None] = [None] * len(js)
        for i, b in zip(np.flatnonzero(scored), best, strict=True):
            out[i] = int(b)
        return out

    def _reasons_at(
        self, parts: Parts, bg: Background, j: int, because: int | None
    ) -> list[Reason]:
        c = self.config
        out: list[Reason] = []
        i2i = float(parts.item2item[0, j])
        if i2i > 0:
            out.append(Reason("item2item", f"because you watched {because}", i2i, because))
        if c.transition > 0 and parts.transition[0, j] > 0:
            out.append(
                Reason(
                    "item2item",
                    "often watched next after your latest video",
                    c.transition * float(parts.transition[0, j]),
                )
            )
        if parts.ann[0, j] > 0:
            weight = c.ann_weight * float(parts.ann[0, j])
            out.append(Reason("ann", "close to your recent interests", weight))
        if parts.following[0, j] > 0:
            out.append(Reason("following", "from a creator you follow", c.following_weight))
        if bg.at("fresh", parts.cols[j : j + 1])[0]:
            out.append(Reason("fresh", "a new upload we are trying out", 0.0))
        trend = float(parts.trending[j])
        if trend > 0.2 or not out:
            text = "trending now" if trend > 0.2 else "popular on the platform"
            out.append(Reason("trending" if trend > 0.2 else "popular", text, trend))
        return out

"""The re-ranker: from scored items to a feed — caps, exploration, padding.

The seen filter and eligibility arrive as ``-inf`` scores. Creator and topic caps
keep one creator or topic from filling a feed; the exploration share reserves
slots for fresh items (cold-start exposure for new uploads), newest first.
"""

from __future__ import annotations

import numpy as np

from trustfeed.recommend._base import PAD


def rerank(
    score: np.ndarray,
    k: int,
    *,
    creator: np.ndarray,
    topic: np.ndarray,
    creator_cap: int = 0,
    topic_cap: int = 0,
    explore: np.ndarray | None = None,
    explore_share: float = 0.0,
    order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item rows, scores) of each user's feed of length ``k``, -1 / -inf padded."""
    n_users, n_items = score.shape
    if n_items == 0:  # nothing to choose from (say, nothing eligible yet)
        return np.full((n_users, k), PAD, np.int64), np.full((n_users, k), -np.inf)
    n_explore = round(explore_share * k) if explore is not None else 0
    pool = min(n_items, k * 4 + n_explore if (creator_cap or topic_cap) else k)
    top = top_columns(score, pool)
    if not (creator_cap or topic_cap or n_explore):
        return _pad(top[:, :k], score, k)
    out = np.full((n_users, k), PAD, np.int64)
    fresh_rank = _fresh_order(explore, order) if n_explore else np.zeros(0, np.int64)
    for u in range(n_users):
        feed = _capped(top[u], score[u], k - n_explore, creator, topic, creator_cap, topic_cap)
        if n_explore:
            taken = set(feed)
            extra = [
                int(i) for i in fresh_rank if np.isfinite(score[u, i]) and int(i) not in taken
            ][:n_explore]
            feed = _interleave(feed, extra, k)
            if len(feed) < k:  # not enough fresh items: fill from the ranked list
                more = _capped(top[u], score[u], k, creator, topic, creator_cap, topic_cap)
                feed += [i for i in more if i not in set(feed)][: k - len(feed)]
        out[u, : len(feed)] = feed
    return _pad(out, score, k)


def top_columns(score: np.ndarray, n: int) -> np.ndarray:
    """Columns of the ``n`` best scores of each row, best first, ties to the lower column.

    Equal scores are common (the popularity tie-break of items with as many views),
    and ``argpartition`` splits a tie at the cut arbitrarily. Breaking ties by column
    (item row) makes a feed the same whichever set of columns holding its top is
    scored: the candidate path and the whole catalogue, one user or a batch.
    """
    n = min(n, score.shape[1])
    if n <= 0:
        return np.zeros((score.shape[0], 0), np.int64)
    part = np.argpartition(-score, n - 1, axis=1)[:, :n]
    cut = np.take_along_axis(score, part, axis=1).min(axis=1)
    out = np.empty((score.shape[0], n), np.int64)
    for u in range(score.shape[0]):
        row = score[u]
        # Everything at least as good as the cut (ties included); -inf is never served.
        cols = (
            np.flatnonzero(row >= cut[u]) if np.isfinite(cut[u]) else np.flatnonzero(row > cut[u])
        )
        cols = cols[np.argsort(-row[cols], kind="stable")][:n]
        if len(cols) < n:  # pad with unservable columns; ``_pad`` drops them
            cols = np.concatenate([cols, np.flatnonzero(~(row > cut[u]))[: n - len(cols)]])
        out[u] = cols
    return out


def _pad(rows: np.ndarray, score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.full((score.shape[0], k), PAD, np.int64)
    out[:, : rows.shape[1]] = rows
    safe = np.where(out >= 0, out, 0)
    vals = np.take_along_axis(score, safe, axis=1)
    ok = (out >= 0) & np.isfinite(vals)
    return np.where(ok, out, PAD), np.where(ok, vals, -np.inf)


def _capped(
    ranked: np.ndarray,
    score: np.ndarray,
    k: int,
    creator: np.ndarray,
    topic: np.ndarray,
    creator_cap: int,
    topic_cap: int,
) -> list[int]:
    feed: list[int] = []
    per_creator: dict[int, int] = {}
    per_topic: dict[int, int] = {}
    for i in ranked:
        if len(feed) >= k or not np.isfinite(score[i]):
            break
        c, t = int(creator[i]), int(topic[i])
        if creator_cap and c >= 0 and per_creator.get(c, 0) >= creator_cap:
            continue
        if topic_cap and t >= 0 and per_topic.get(t, 0) >= topic_cap:
            continue
        per_creator[c] = per_creator.get(c, 0) + 1
        per_topic[t] = per_topic.get(t, 0) + 1
        feed.append(int(i))
    return feed


def _fresh_order(explore: np.ndarray | None, order: np.ndarray | None) -> np.ndarray:
    rows = np.flatnonzero(explore) if explore is not None else np.zeros(0, np.int64)
    if order is None or len(rows) == 0:
        return rows
    return rows[np.argsort(-order[rows], kind="stable")]


def _interleave(feed: list[int], extra: list[int], k: int) -> list[int]:
    """Place exploration items evenly through the feed (not all at the bottom)."""
    if not extra:
        return feed
    out = list(feed)
    step = max(1, (len(feed) + len(extra)) // len(extra))
    for j, item in enumerate(extra):
        out.insert(min(step * j + step - 1, len(out)), item)
    return out[:k]

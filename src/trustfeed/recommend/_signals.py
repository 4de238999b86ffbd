"""Per-event weights and per-item statistics that the stream keeps up to date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trustfeed.data import NEGATIVE_EVENTS

#: How much each engagement says about interest, relative to a full plain view.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "like": 2.0,
    "share": 3.0,
    "comment": 1.5,
    "follow": 2.0,
    "skip": 0.0,
    "hate": 0.0,
}


def event_weights(events: pd.DataFrame, positive_watch_ratio: float) -> np.ndarray:
    """Interest weight per row; 0 marks a non-positive (skip, hate, a view watched too briefly).

    Without an ``event`` column every row is a positive of weight 1 (implicit data).
    """
    n = len(events)
    weight = np.ones(n, np.float32)
    if "event" in events:
        kind = events["event"].astype(str).to_numpy()
        weight = np.array([EVENT_WEIGHTS.get(k, 1.0) for k in kind], np.float32) if n else weight
        is_view = kind == "view"
    else:
        is_view = np.ones(n, bool)
    if "watch_ms" in events and "duration_ms" in events:
        ratio = _watch_ratio(events)
        known = ~np.isnan(ratio)
        brief = is_view & known & (ratio < positive_watch_ratio)
        weight = np.where(brief, 0.0, weight).astype(np.float32)
    return weight


def _watch_ratio(events: pd.DataFrame) -> np.ndarray:
    watch = events["watch_ms"].to_numpy(np.float64, na_value=np.nan)
    duration = events["duration_ms"].to_numpy(np.float64, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(duration > 0, watch / duration, np.nan)
    return np.clip(ratio, 0.0, 1.0)


def negative_mask(events: pd.DataFrame) -> np.ndarray:
    """Rows that are explicit negative feedback (skip, hate)."""
    if "event" not in events:
        return np.zeros(len(events), bool)
    return events["event"].astype(str).isin(NEGATIVE_EVENTS).to_numpy()


class ItemStats:
    """Views, time-decayed trending mass, first-seen time and creator per item row."""

    def __init__(self, half_life_s: float) -> None:
        self.half_life_s = float(half_life_s)
        self.views = np.zeros(0, np.float64)
        self.positives = np.zeros(0, np.float64)
        self.negatives = np.zeros(0, np.float64)
        self.trend = np.zeros(0, np.float64)  # decayed positives, as of ``self.clock``
        self.first_seen = np.zeros(0, np.float64)
        self.creator = np.zeros(0, np.int64)
        self.clock = -np.inf

    def _ensure(self, n: int) -> None:
        have = len(self.views)
        if n <= have:
            return
        extra = max(n, 2 * have, 64) - have
        for name in ("views", "positives", "negatives", "trend"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra)]))
        self.first_seen = np.concatenate([self.first_seen, np.full(extra, np.inf)])
        self.creator = np.concatenate([self.creator, np.full(extra, -1, np.int64)])

    def update(
        self, items: np.ndarray, times: np.ndarray, weights: np.ndarray, negative: np.ndarray
    ) -> None:
        """Fold a time-ordered batch of events into the statistics."""
        if len(items) == 0:
            return
        self._ensure(int(items.max()) + 1)
        n = len(self.views)
        now = float(times.max())
        decay = np.log(2) / self.half_life_s
        if np.isfinite(self.clock) and now > self.clock:
            self.trend *= np.exp(-decay * (now - self.clock))
        self.clock = max(self.clock, now)
        age = np.maximum(self.clock - times, 0.0)
        self.trend += np.bincount(items, weights=weights * np.exp(-decay * age), minlength=n)
        self.views += np.bincount(items, minlength=n)
        self.positives += np.bincount(items, weights=(weights > 0).astype(float), minlength=n)
        self.negatives += np.bincount(items, weights=negative.astype(float), minlength=n)
        np.minimum.at(self.first_seen, items, times)

    def reset(self, rows: np.ndarray) -> None:
        """Forget rows freed by expiry, so a reused row starts clean."""
        rows = rows[rows < len(self.views)]
        for arr in (self.views, self.positives, self.negatives, self.trend):
            arr[rows] = 0
        self.first_seen[rows] = np.inf
        self.creator[rows] = -1

    def trending(self, n_items: int) -> np.ndarray:
        """Trending mass scaled to [0, 1]."""
        t = np.zeros(n_items)
        m = min(n_items, len(self.trend))
        t[:m] = self.trend[:m]
        top = t.max(initial=0.0)
        return t / top if top > 0 else t

    def state(self) -> dict[str, np.ndarray]:
        return {
            "views": self.views,
            "positives": self.positives,
            "negatives": self.negatives,
            "trend": self.trend,
            "first_seen": self.first_seen,
            "creator": self.creator,
            "clock": np.array([self.clock]),
        }

    @classmethod
    def from_state(cls, half_life_s: float, state: dict[str, np.ndarray]) -> ItemStats:
        stats = cls(half_life_s)
        for name in ("views", "positives", "negatives", "trend", "first_seen", "creator"):
            setattr(stats, name, state[name])
        stats.clock = float(state["clock"][0])
        return stats


def has_task_labels(events: pd.DataFrame) -> bool:
    """Whether the events carry anything the multi-task ranker can learn from."""
    if (
        "event" in events
        and events["event"].astype(str).isin(["like", "share", "skip", "hate"]).any()
    ):
        return True
    return "watch_ms" in events and "duration_ms" in events


def task_labels(frame: pd.DataFrame, positive_watch_ratio: float) -> dict[str, np.ndarray]:
    """Per-impression labels: long view, watch ratio, like, share, negative feedback."""
    kind = (
        frame["event"].astype(str).to_numpy() if "event" in frame else np.full(len(frame), "view")
    )
    labels = {
        "like": (kind == "like").astype(np.float32),
        "share": (kind == "share").astype(np.float32),
        "negative": np.isin(kind, ["skip", "hate"]).astype(np.float32),
    }
    if "watch_ms" in frame and "duration_ms" in frame:
        ratio = _watch_ratio(frame)
        labels["watch_ratio"] = ratio.astype(np.float32)
        labels["long_view"] = np.where(
            np.isnan(ratio), np.nan, ratio >= positive_watch_ratio
        ).astype(np.float32)
    return labels

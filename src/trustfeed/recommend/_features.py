"""Features of (user, item) impression pairs for the multi-task ranker.

Everything is learned from a training log only: at ranking time an impression
is described by what was known before it (no leakage from the evaluated days).
The rows of the training log itself get *out-of-fold* statistics: a row's item
and user rates come from the other folds, so the ranker never sees a rate that
contains its own label (with a plain in-sample rate, an item seen once has a
rate that *is* its label, and the ranker learns to trust rates far too much).

Rates are shrunk towards the global rate by empirical Bayes: a Beta prior whose
strength is fitted by the method of moments over items (or users), so a video
seen three times does not get a 0 % or 100 % rate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from trustfeed.recommend._base import NotFittedError, RecommendError, index_of
from trustfeed.recommend._stats import (
    Effects,
    PlayTimes,
    Rates,
    fit_effects,
    nanmean,
    shrunk_rates,
)

#: Version of the saved layout; bumped whenever the columns or their meaning change.
FEATURES_FORMAT = 2

#: Extra per-pair columns (e.g. a collaborative-filtering score): ``(users, items) -> (n, e)``.
ExtraFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class FeatureError(RecommendError, ValueError):
    """Input that the feature builder cannot describe (missing columns, wrong lengths)."""


def impression_labels(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Task labels of a KuaiRand-style impression log, for the tasks whose columns exist.

    ``watch_ratio`` is play time over duration clipped to [0, 1]; where the
    duration is 0 (unknown) it is NaN, which the ranker treats as missing.

    >>> f = pd.DataFrame({"long_view": [1, 0], "is_like": [0, 1],
    ...                   "play_time_ms": [500, 9], "duration_ms": [1000, 0]})
    >>> {k: v.tolist() for k, v in impression_labels(f).items()}
    {'long_view': [1.0, 0.0], 'like': [0.0, 1.0], 'watch_ratio': [0.5, nan]}
    """
    columns = {
        "click": "is_click",
        "long_view": "long_view",
        "like": "is_like",
        "forward": "is_forward",
        "comment": "is_comment",
        "hate": "is_hate",
    }
    out = {
        task: frame[col].to_numpy(np.float64).clip(0, 1)
        for task, col in columns.items()
        if col in frame.columns
    }
    if {"play_time_ms", "duration_ms"} <= set(frame.columns):
        play = frame["play_time_ms"].to_numpy(np.float64)
        duration = frame["duration_ms"].to_numpy(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(duration > 0, play / np.where(duration > 0, duration, 1.0), np.nan)
        out["watch_ratio"] = np.clip(ratio, 0.0, 1.0)
    return out


@dataclass(frozen=True)
class _State:
    """Everything ``transform`` needs, learned from one subset of the training rows."""

    items: Rates
    users: Rates
    user_bucket: Rates  # keyed by user_id * n_buckets + bucket
    bucket_prior: np.ndarray  # (n_buckets, n_tasks)
    effects: Effects | None = None
    plays: PlayTimes | None = None


class ImpressionFeatures:
    """Builds the ranker's feature matrix for (user, item) impressions.

    Columns, in order (see :attr:`feature_names_`): per task the item's smoothed
    rate; the item's impression count (log1p); the duration (log1p seconds; NaN
    when unknown) and its bucket (unknown durations have their own: in KuaiRand
    they are a fifth as often long-viewed); per task the user's smoothed rate;
    the user's impression count (log1p); per task the user's rate on videos of
    this duration bucket (shrunk towards the bucket's global rate); the hour of
    day; with ``effects``, per task the item's effect and the full logit of a
    logistic additive model (user + item + duration: the one-hot LR, stacked
    out of fold; a ranker can start from that logit, see ``margins``); with
    ``play_times`` (and a ``play_time_ms`` column), how the user's own training
    play times compare with this video's duration; then the ``extra`` columns.

    ``extra(user_ids, item_ids)`` is called on the training rows too: when it
    is learned from the same log (a collaborative-filtering score), it should
    itself be out-of-fold there, or the ranker will over-trust it.

    >>> log = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [10, 11, 10, 11],
    ...                     "duration_ms": [5e3, 6e4, 5e3, 6e4], "hour": [9, 9, 20, 21]})
    >>> fb = ImpressionFeatures(n_folds=2, n_buckets=2)
    >>> x = fb.fit_transform(log, {"long_view": np.array([1.0, 0, 1, 0])})
    >>> x.shape, fb.transform(log).shape, fb.feature_names_[:2]
    ((4, 10), (4, 10), ['item_long_view', 'item_log_count'])
    """

    def __init__(
        self,
        *,
        n_folds: int = 5,
        n_buckets: int = 8,
        seed: int = 0,
        extra: ExtraFn | None = None,
        extra_names: list[str] | None = None,
        effects: bool = True,
        play_times: bool = True,
    ) -> None:
        if n_folds < 2:
            raise FeatureError("n_folds must be at least 2 for out-of-fold statistics")
        self.n_folds = n_folds
        self.n_buckets = n_buckets
        self.seed = seed
        self.extra = extra
        self.extra_names = extra_names
        self.effects = effects
        self.play_times = play_times
        self.tasks_: list[str] | None = None
        self.feature_names_: list[str] = []
        self._edges = np.zeros(0)
        self._item_duration: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros(0))
        self._state: _State | None = None
        self._n_extra = 0

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, log: pd.DataFrame, labels: Mapping[str, np.ndarray]) -> Self:
        """Learn the statistics from the whole training log (for later impressions)."""
        self.fit_transform(log, labels)
        return self

    def fit_transform(self, log: pd.DataFrame, labels: Mapping[str, np.ndarray]) -> np.ndarray:
        """Learn from ``log`` and return its own rows' features, computed out-of-fold."""
        users, items, duration, hour = self._columns(log, learn_duration=True)
        tasks = sorted(labels)
        if not tasks:
            raise FeatureError("no task labels given")
        y = np.column_stack([self._label(labels, t, len(log)) for t in tasks])
        self.tasks_ = tasks
        finite = duration[np.isfinite(duration)]
        qs = np.linspace(0, 1, self.n_buckets + 1)[1:-1]
        self._edges = np.unique(np.quantile(finite, qs)) if len(finite) else np.zeros(0)
        bucket = self._bucket(duration)
        play = None
        if self.play_times and "play_time_ms" in log.columns:
            play = log["play_time_ms"].to_numpy(np.float64)
        folds = np.random.default_rng(self.seed).integers(0, self.n_folds, len(log))
        out = np.empty((len(log), 0), np.float32)
        for k in range(self.n_folds):
            rest, own = folds != k, folds == k
            state = self._learn(
                users[rest],
                items[rest],
                duration[rest],
                bucket[rest],
                y[rest],
                None if play is None else play[rest],
            )
            block = self._build(
                state, users[own], items[own], duration[own], bucket[own], hour[own]
            )
            if k == 0:
                out = np.empty((len(log), block.shape[1]), np.float32)
            out[own] = block
        self._state = self._learn(users, items, duration, bucket, y, play)
        self.feature_names_ = self._names()
        return self._with_extra(out, users, items, fitting=True)

    def _learn(
        self,
        users: np.ndarray,
        items: np.ndarray,
        duration: np.ndarray,
        bucket: np.ndarray,
        y: np.ndarray,
        play: np.ndarray | None = None,
    ) -> _State:
        items_ = shrunk_rates(items, y)
        users_ = shrunk_rates(users, y)
        n_b = self._n_buckets()
        bucket_prior = np.array(
            [
                [
                    nanmean(y[bucket == b, t]) if (bucket == b).any() else items_.prior[t]
                    for t in range(y.shape[1])
                ]
                for b in range(n_b)
            ]
        ).reshape(n_b, y.shape[1])
        # A user's taste for short or long videos, shrunk towards the bucket's overall rate.
        user_bucket = shrunk_rates(users * n_b + bucket, y, lambda k: bucket_prior[k % n_b])
        effects = (
            fit_effects(users, items, bucket, np.log1p(duration / 1000.0), y, n_b)
            if self.effects
            else None
        )
        plays = PlayTimes.learn(users, play) if play is not None else None
        return _State(items_, users_, user_bucket, bucket_prior, effects, plays)

    # -- transforming --------------------------------------------------------------------------

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Features of new impressions from the statistics of the whole training log."""
        if self._state is None:
            raise NotFittedError("ImpressionFeatures.transform called before fit")
        users, items, duration, hour = self._columns(frame, learn_duration=False)
        block = self._build(self._state, users, items, duration, self._bucket(duration), hour)
        return self._with_extra(block, users, items)

    def _build(
        self,
        state: _State,
        users: np.ndarray,
        items: np.ndarray,
        duration: np.ndarray,
        bucket: np.ndarray,
        hour: np.ndarray,
    ) -> np.ndarray:
        item_rates, item_n = state.items.lookup(items)
        user_rates, user_n = state.users.lookup(users)
        n_b = self._n_buckets()
        pos = index_of(state.user_bucket.keys, users * n_b + bucket)
        ub = np.where(
            (pos >= 0)[:, None],
            state.user_bucket.rates[np.maximum(pos, 0)],
            state.bucket_prior[bucket],
        )
        cols = [
            item_rates,
            np.log1p(item_n)[:, None],
            np.log1p(duration / 1000.0)[:, None],
            bucket[:, None].astype(np.float64),
            user_rates,
            np.log1p(user_n)[:, None],
            ub,
            hour[:, None],
        ]
        if state.effects is not None:
            cols.extend(state.effects.lookup(users, items, bucket, np.log1p(duration / 1000.0)))
        if state.plays is not None:
            cols.append(state.plays.lookup(users, self._typical(duration)))
        return np.hstack(cols).astype(np.float32)

    def _with_extra(
        self, block: np.ndarray, users: np.ndarray, items: np.ndarray, *, fitting: bool = False
    ) -> np.ndarray:
        if self.extra is None:
            if self._n_extra and not fitting:
                raise FeatureError(f"fitted with {self._n_extra} extra columns; pass extra= again")
            self._n_extra = 0 if fitting else self._n_extra
            return block
        more = np.asarray(self.extra(users, items), dtype=np.float32).reshape(len(users), -1)
        if fitting:
            self._n_extra = more.shape[1]
            names = self.extra_names or [f"extra_{i}" for i in range(more.shape[1])]
            if len(names) != more.shape[1]:
                raise FeatureError(f"{len(names)} extra_names for {more.shape[1]} extra columns")
            self.feature_names_ = [*self._names(), *names]
        elif more.shape[1] != self._n_extra:
            raise FeatureError(f"extra gave {more.shape[1]} columns, fitted with {self._n_extra}")
        return np.hstack([block, more])

    def _names(self) -> list[str]:
        tasks = self.tasks_ or []
        return [
            *(f"item_{t}" for t in tasks),
            "item_log_count",
            "log_duration_s",
            "duration_bucket",
            *(f"user_{t}" for t in tasks),
            "user_log_count",
            *(f"user_bucket_{t}" for t in tasks),
            "hour",
            *(
                [*(f"item_effect_{t}" for t in tasks), *(f"additive_{t}" for t in tasks)]
                if self._state is not None and self._state.effects is not None
                else []
            ),
            *(
                ["user_play_half", "user_play_full", "user_play_ratio"]
                if self._state is not None and self._state.plays is not None
                else []
            ),
        ]

    # -- columns -------------------------------------------------------------------------------

    @staticmethod
    def _label(labels: Mapping[str, np.ndarray], task: str, n: int) -> np.ndarray:
        y = np.asarray(labels[task], dtype=np.float64)
        if y.shape != (n,):
            raise FeatureError(f"labels[{task!r}] has shape {y.shape}, expected ({n},)")
        return y

    def _columns(
        self, frame: pd.DataFrame, *, learn_duration: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        missing = {"user_id", "item_id"} - set(frame.columns)
        if missing:
            raise FeatureError(f"impressions lack the columns {sorted(missing)}")
        users = frame["user_id"].to_numpy(np.int64)
        items = frame["item_id"].to_numpy(np.int64)
        duration = np.full(len(frame), np.nan)
        if "duration_ms" in frame.columns:
            d = frame["duration_ms"].to_numpy(np.float64)
            duration = np.where(d > 0, d, np.nan)  # 0 = unknown in KuaiRand
        if learn_duration:
            self._learn_durations(items, duration)
        known_items, known_d = self._item_duration
        pos = index_of(known_items, items)
        gaps = np.isnan(duration)
        duration[gaps] = np.where(pos[gaps] >= 0, known_d[np.maximum(pos[gaps], 0)], np.nan)
        return users, items, duration, self._hour(frame)

    def _learn_durations(self, items: np.ndarray, duration: np.ndarray) -> None:
        ok = ~np.isnan(duration)
        if not ok.any():
            self._item_duration = (np.zeros(0, np.int64), np.zeros(0))
            return
        per_item = pd.Series(duration[ok]).groupby(items[ok]).median()
        self._item_duration = (per_item.index.to_numpy(np.int64), per_item.to_numpy(np.float64))

    @staticmethod
    def _hour(frame: pd.DataFrame) -> np.ndarray:
        if "hour" in frame.columns:
            return frame["hour"].to_numpy(np.float64)
        if "hourmin" in frame.columns:
            return (frame["hourmin"].to_numpy(np.int64) // 100).astype(np.float64)
        if "timestamp" in frame.columns:  # UTC: a per-deployment offset belongs in the log
            return ((frame["timestamp"].to_numpy(np.float64) // 3600) % 24).astype(np.float64)
        return np.full(len(frame), -1.0)

    def _bucket(self, duration: np.ndarray) -> np.ndarray:
        """Quantile bucket of the duration; unknown durations get a bucket of their own."""
        bucket = np.searchsorted(self._edges, duration, side="right").astype(np.int64)
        return np.where(np.isnan(duration), len(self._edges) + 1, bucket)

    def _n_buckets(self) -> int:
        return len(self._edges) + 2

    def _typical(self, duration: np.ndarray) -> np.ndarray:
        """``duration`` with unknown values replaced by the median item's."""
        known_d = self._item_duration[1]
        fallback = float(np.median(known_d)) if len(known_d) else 30_000.0
        return np.where(np.isnan(duration), fallback, duration)

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the fitted statistics as ``.npz`` arrays plus a JSON header (no pickle)."""
        if self._state is None:
            raise NotFittedError("ImpressionFeatures.save called before fit")
        st = self._state
        meta = {
            "format": FEATURES_FORMAT,
            "n_folds": self.n_folds,
            "n_buckets": self.n_buckets,
            "seed": self.seed,
            "tasks": self.tasks_,
            "feature_names": self.feature_names_,
            "n_extra": self._n_extra,
            "extra_names": self.extra_names,
            "effects": st.effects is not None,
            "play_times": st.plays is not None,
        }
        arrays: dict[str, Any] = {"meta": np.array(json.dumps(meta)), "edges": self._edges}
        arrays["dur_items"], arrays["dur_ms"] = self._item_duration
        arrays["bucket_prior"] = st.bucket_prior
        for name in ("items", "users", "user_bucket"):
            r: Rates = getattr(st, name)
            for field in ("keys", "counts", "rates", "prior"):
                arrays[f"{name}.{field}"] = getattr(r, field)
        for name, part in (("effects", st.effects), ("plays", st.plays)):
            if part is not None:
                arrays |= {f"{name}.{f.name}": getattr(part, f.name) for f in fields(part)}
        with Path(path).open("wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path, *, extra: ExtraFn | None = None) -> Self:
        """Read what :meth:`save` wrote; ``extra`` must be given again if it was used."""
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FEATURES_FORMAT:
                # Format 1 filled unknown durations in and had no effects: its columns
                # mean something else, so a ranker fitted on them must be refitted too.
                raise FeatureError(
                    f"feature format {meta.get('format')!r} in {path}; this version reads "
                    f"{FEATURES_FORMAT}: refit the features and the ranker"
                )
            new = cls(
                n_folds=meta["n_folds"],
                n_buckets=meta["n_buckets"],
                seed=meta["seed"],
                extra=extra,
                extra_names=meta["extra_names"],
                effects=meta["effects"],
                play_times=meta["play_times"],
            )
            rates = {
                name: Rates(*(z[f"{name}.{f}"] for f in ("keys", "counts", "rates", "prior")))
                for name in ("items", "users", "user_bucket")
            }
            effects = Effects(**_part(z, "effects", Effects)) if meta["effects"] else None
            plays = PlayTimes(**_part(z, "plays", PlayTimes)) if meta["play_times"] else None
            new._state = _State(
                rates["items"],
                rates["users"],
                rates["user_bucket"],
                z["bucket_prior"],
                effects,
                plays,
            )
            new._edges = z["edges"]
            new._item_duration = (z["dur_items"], z["dur_ms"])
        new.tasks_ = meta["tasks"]
        new.feature_names_ = meta["feature_names"]
        new._n_extra = meta["n_extra"]
        return new


def _part(z: Any, name: str, kind: type) -> dict[str, np.ndarray]:
    """The arrays of one saved dataclass (``name.field``) as its constructor's keywords."""
    return {f.name: z[f"{name}.{f.name}"] for f in fields(kind)}

"""The per-key statistics impression features are made of, each learned from one subset of rows.

* :class:`Rates` — every task's rate per key (item, user, user × duration
  bucket), shrunk towards a prior by empirical Bayes;
* :class:`Effects` — an L2-regularised additive logistic model per task (the
  one-hot logistic regression, used as features);
* :class:`PlayTimes` — each user's play-time distribution, read at a candidate's
  duration.

:mod:`trustfeed.recommend._features` fits them out of fold and stacks them into
the ranker's columns; they live here so each stays a small, plain numpy piece.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trustfeed.recommend._base import index_of

#: The prior strength (pseudo-impressions) is kept inside these bounds.
_PRIOR_BOUNDS = (2.0, 500.0)
#: L2 penalty and sweeps of the additive logistic effects (the one-hot LR's C = 1;
#: 8 sweeps left the watch-ratio fit short of convergence).
_EFFECT_L2 = 1.0
_EFFECT_SWEEPS = 30
#: Play times (ms) are packed as ``user * _PLAY_SCALE + ms``; the user's own play-time
#: distribution is shrunk towards everyone's with this many pseudo-impressions.
_PLAY_SCALE = 1 << 32
_PLAY_PRIOR = 10.0


@dataclass(frozen=True)
class Rates:
    """Smoothed per-key rates of every task, learned from one subset of rows."""

    keys: np.ndarray  # sorted unique ids
    counts: np.ndarray  # impressions per key
    rates: np.ndarray  # (len(keys), n_tasks), shrunk towards ``prior``
    prior: np.ndarray  # (n_tasks,) global rate used for unknown keys

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = index_of(self.keys, ids)
        known = pos >= 0
        rates = np.where(known[:, None], self.rates[np.maximum(pos, 0)], self.prior)
        counts = np.where(known, self.counts[np.maximum(pos, 0)], 0.0)
        return rates, counts


def _prior_strength(sums: np.ndarray, counts: np.ndarray, spread: float) -> float:
    """Strength ``m`` (pseudo-impressions) of the prior, by the method of moments.

    ``spread`` is the variance of one label (μ(1-μ) for a binary task); the
    variance of the per-key means minus its sampling noise is the between-key
    variance τ², and ``m = spread / τ²`` (the Beta-binomial moment estimate).
    """
    ok = counts > 0
    if ok.sum() < 2 or spread <= 0.0:
        return _PRIOR_BOUNDS[1]
    rates = sums[ok] / counts[ok]
    tau2 = max(float(np.var(rates)) - float(np.mean(spread / counts[ok])), 1e-12)
    return float(np.clip(spread / tau2, *_PRIOR_BOUNDS))


def shrunk_rates(
    keys: np.ndarray, labels: np.ndarray, center: Callable[[np.ndarray], np.ndarray] | None = None
) -> Rates:
    """Rates of ``labels`` (n, t; NaN = missing) per key, shrunk by empirical Bayes.

    Each key is shrunk towards ``center(unique_keys)`` (rows × tasks), by default
    the global rate of the task.
    """
    uniq, inv = np.unique(keys, return_inverse=True)
    n_tasks = labels.shape[1]
    counts = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
    glob = np.array([nanmean(labels[:, t]) for t in range(n_tasks)])
    centers = np.broadcast_to(glob, (len(uniq), n_tasks)) if center is None else center(uniq)
    rates = np.empty((len(uniq), n_tasks))
    for t in range(n_tasks):
        y = labels[:, t]
        seen = ~np.isnan(y)
        s = np.bincount(inv[seen], weights=y[seen], minlength=len(uniq))
        c = np.bincount(inv[seen], minlength=len(uniq)).astype(np.float64)
        m = _prior_strength(s, c, float(np.var(y[seen])) if seen.any() else 0.0)
        rates[:, t] = (s + m * centers[:, t]) / (c + m)
    return Rates(uniq, counts, rates, glob)


def nanmean(y: np.ndarray) -> float:
    seen = ~np.isnan(y)
    return float(y[seen].mean()) if seen.any() else 0.0


@dataclass(frozen=True)
class Effects:
    """Per task, an L2-regularised logistic additive model: the one-hot LR, as features.

    logit = intercept + user + item + duration bucket + a quadratic in the
    standardised log duration. Fitted jointly, an item's effect is measured
    *given* who watched it (a rate is not), which matters when an item was shown
    to three users; on KuaiRand this logit alone ranks long views as well as the
    trees did on the rates (0.571 vs 0.55 per-user AUC on a validation split).
    """

    users: np.ndarray  # sorted ids
    items: np.ndarray  # sorted ids
    user_fx: np.ndarray  # (n_users, n_tasks) logits
    item_fx: np.ndarray  # (n_items, n_tasks)
    bucket_fx: np.ndarray  # (n_buckets, n_tasks)
    poly: np.ndarray  # (3, n_tasks): intercept, slope and curvature in the log duration
    scale: np.ndarray  # (2,): mean and sd of the log duration

    def lookup(
        self, users: np.ndarray, items: np.ndarray, bucket: np.ndarray, log_d: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Item effects and full logits (unknown ids contribute 0)."""
        u, i = index_of(self.users, users), index_of(self.items, items)
        item = np.where((i >= 0)[:, None], self.item_fx[np.maximum(i, 0)], 0.0)
        user = np.where((u >= 0)[:, None], self.user_fx[np.maximum(u, 0)], 0.0)
        x = _standard(log_d, self.scale)
        powers = np.column_stack([np.ones_like(x), x, x * x])
        return item, powers @ self.poly + user + item + self.bucket_fx[bucket]


def _standard(log_d: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.nan_to_num((log_d - scale[0]) / scale[1])


def fit_effects(
    users: np.ndarray,
    items: np.ndarray,
    bucket: np.ndarray,
    log_d: np.ndarray,
    y: np.ndarray,
    n_buckets: int,
) -> Effects:
    """Block-coordinate Newton on Σ cross-entropy + l2/2 · ||effects||² (soft labels allowed).

    Each block (one coefficient per user, per item, ...) has a diagonal Hessian,
    so a sweep is a few bincounts; the intercept is not penalised.
    """
    uu, ui = np.unique(users, return_inverse=True)
    iu, ii = np.unique(items, return_inverse=True)
    known = ~np.isnan(log_d)
    scale = (
        np.array([log_d[known].mean(), log_d[known].std() + 1e-9]) if known.any() else np.ones(2)
    )
    x = _standard(log_d, scale)
    zero = np.zeros(len(users), np.int64)
    # (row → coefficient, row's value, penalty); the intercept (first) is unpenalised.
    blocks: list[tuple[np.ndarray, np.ndarray | None, float]] = [
        (zero, None, 0.0),
        (ui, None, _EFFECT_L2),
        (ii, None, _EFFECT_L2),
    ]
    blocks += [(bucket, None, _EFFECT_L2), (zero, x, _EFFECT_L2), (zero, x * x, _EFFECT_L2)]
    sizes = (1, len(uu), len(iu), n_buckets, 1, 1)
    fx = [np.zeros((n, y.shape[1])) for n in sizes]
    for t in range(y.shape[1]):
        seen = ~np.isnan(y[:, t])
        yt = y[seen, t]
        z = np.zeros(len(yt))
        for _ in range(_EFFECT_SWEEPS):
            for coef, (code_all, v_all, lam) in zip(fx, blocks, strict=True):
                code = code_all[seen]
                v = np.ones(len(yt)) if v_all is None else v_all[seen]
                p = _sigmoid(z)
                g = np.bincount(code, (p - yt) * v, len(coef)) + lam * coef[:, t]
                h = np.bincount(code, p * (1 - p) * v * v, len(coef)) + lam + 1e-9
                step = g / h
                coef[:, t] -= step
                z -= step[code] * v
    poly = np.vstack([fx[0], fx[4], fx[5]])
    return Effects(uu, iu, fx[1], fx[2], fx[3], poly, scale)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class PlayTimes:
    """Each user's training play times, to ask how this user would watch a video this long.

    A rate per duration bucket is coarse; the user's own play-time
    distribution, read at the candidate's duration, is a per-user, per-item
    interaction that the trees cannot build from separate user and item columns.
    """

    users: np.ndarray  # sorted ids
    starts: np.ndarray  # (n_users + 1,) segment bounds in ``keys``
    keys: np.ndarray  # user position * _PLAY_SCALE + play ms, sorted
    cum: np.ndarray  # (len(keys) + 1,) running sum of play ms
    pooled: np.ndarray  # all play ms, sorted (the prior)
    pooled_cum: np.ndarray

    @classmethod
    def learn(cls, users: np.ndarray, play_ms: np.ndarray) -> PlayTimes:
        ok = np.isfinite(play_ms)
        play = np.clip(play_ms[ok], 0, _PLAY_SCALE - 1).astype(np.int64)
        uniq, pos = np.unique(users[ok], return_inverse=True)
        keys = np.sort(pos.astype(np.int64) * _PLAY_SCALE + play)
        starts = np.searchsorted(keys, np.arange(len(uniq) + 1) * _PLAY_SCALE)
        plays = keys % _PLAY_SCALE
        pooled = np.sort(play)
        return cls(
            uniq,
            starts,
            keys,
            np.concatenate([[0.0], np.cumsum(plays, dtype=np.float64)]),
            pooled,
            np.concatenate([[0.0], np.cumsum(pooled, dtype=np.float64)]),
        )

    def lookup(self, users: np.ndarray, duration: np.ndarray) -> np.ndarray:
        """Per row: shrunk P(play ≥ d/2), P(play ≥ d) and E[min(play, d) / d] of the user."""
        d = np.maximum(duration, 1.0)
        prior = _survival(self.pooled, self.pooled_cum, 0, len(self.pooled), d)
        u = index_of(self.users, users)
        known = u >= 0
        lo = np.where(known, self.starts[np.maximum(u, 0)], 0)
        hi = np.where(known, self.starts[np.maximum(u, 0) + 1], 0)
        base = np.maximum(u, 0).astype(np.int64) * _PLAY_SCALE
        own = _survival(self.keys, self.cum, lo, hi, d, base)
        n = (hi - lo)[:, None].astype(np.float64)
        return (n * own + _PLAY_PRIOR * prior) / (n + _PLAY_PRIOR)


def _survival(
    keys: np.ndarray,
    cum: np.ndarray,
    lo: np.ndarray | int,
    hi: np.ndarray | int,
    d: np.ndarray,
    base: np.ndarray | int = 0,
) -> np.ndarray:
    """Columns P(x ≥ d/2), P(x ≥ d), E[min(x, d)/d] over the sorted segment keys[lo:hi]."""
    n = np.maximum(np.asarray(hi) - np.asarray(lo), 1).astype(np.float64)
    half = np.searchsorted(keys, base + np.ceil(d / 2).astype(np.int64))
    full = np.searchsorted(keys, base + np.ceil(d).astype(np.int64))
    below = cum[full] - cum[lo]
    return np.column_stack([(hi - half) / n, (hi - full) / n, (below + d * (hi - full)) / (n * d)])

"""``trustfeed bench ranker``: the multi-task ranker against simple baselines on KuaiRand.

KuaiRand-1K's log is random exposure, so ordering each user's later
impressions by a model's score and comparing with what the user did is an
unbiased ranking test. Train on 2022-04-22..05-03, test on 05-04..05-08;
per-user (grouped) AUC and NDCG over the test impressions, for three targets:

* ``long_view`` (0/1);
* ``watch_ratio``: play time / duration clipped to [0, 1] (rows with duration 0
  are left out); NDCG uses the ratio as gain, AUC the event "watched ≥ half";
* ``like`` (0/1; few users have a like among their test impressions, so noisy).

Per-user metrics ignore anything constant within a user: user-level features
alone score 0.5 AUC; they only help through interactions with item features.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.sparse as sp

from trustfeed.evaluation import grouped_auc, grouped_ndcg
from trustfeed.recommend._base import index_of
from trustfeed.recommend._features import ImpressionFeatures, impression_labels
from trustfeed.recommend._ranker import MultiTaskRanker

TRAIN_LAST_DAY = 20220503
TARGETS: tuple[str, ...] = ("long_view", "watch_ratio", "like")
#: Tasks the ranker learns (the targets plus auxiliary feedback, negative included).
RANKER_TASKS: tuple[str, ...] = ("click", "long_view", "like", "forward", "hate", "watch_ratio")
#: Each task's model starts from the stacked LR-style logit of the feature builder (its
#: ``additive_*`` column, out of fold on the training rows) and learns corrections. Likes
#: are too rare to learn items from (about 130 in training), so theirs starts from the
#: watch-ratio logit: the dense signal that ranked likes best on the validation split.
MARGINS: dict[str, str] = {t: f"additive_{t}" for t in RANKER_TASKS} | {
    "like": "additive_watch_ratio"
}
#: Hyper-parameters per backend, chosen on a validation split of the *training* days
#: (fit 04-22..04-30 / 04-28, score 05-01..05-03 / 04-29..05-03; 3 seeds): from that
#: margin, 20 rounds of trees (0.5715 long-view AUC; 50 rounds 0.568, 150 rounds 0.55).
RANKER_HYPER: dict[str, dict[str, Any]] = {"lightgbm": {"num_boost_round": 20}, "mlp": {}}


@dataclass
class RankerRow:
    """One model's result: metrics per target ("auc", "ndcg") and seconds to fit."""

    model: str
    fit_s: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def split_kuairand(log: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier days for training, later days for evaluation (by the ``date`` column)."""
    train = log[log["date"] <= TRAIN_LAST_DAY].reset_index(drop=True)
    test = log[log["date"] > TRAIN_LAST_DAY].reset_index(drop=True)
    return train, test


def evaluate_scores(test: pd.DataFrame, scores: np.ndarray) -> dict[str, dict[str, float]]:
    """Grouped AUC and NDCG per target of one score over ``test``'s impressions."""
    labels = impression_labels(test)
    users = test["user_id"].to_numpy()
    out = {}
    for target in TARGETS:
        y = labels[target]
        ok = ~np.isnan(y)
        binary = (y[ok] >= 0.5).astype(np.float64) if target == "watch_ratio" else y[ok]
        out[target] = {
            "auc": grouped_auc(users[ok], binary, scores[ok]),
            "ndcg": grouped_ndcg(users[ok], y[ok], scores[ok]),
        }
    return out


def run_ranker_bench(
    log: pd.DataFrame, *, seed: int = 0, backends: tuple[str, ...] = ("lightgbm", "mlp")
) -> list[RankerRow]:
    """Every model on the same split; the ranker per backend, as its score and its task heads."""
    train, test = split_kuairand(log)
    rows: list[RankerRow] = []
    t0 = time.perf_counter()
    features = ImpressionFeatures(seed=seed)
    train_labels = impression_labels(train)
    labels = {t: train_labels[t] for t in RANKER_TASKS if t in train_labels}
    x_train = features.fit_transform(train, labels)
    x_test = features.transform(test)
    feature_s = time.perf_counter() - t0
    names = features.feature_names_

    rng = np.random.default_rng(seed)
    rows.append(RankerRow("random", 0.0, evaluate_scores(test, rng.random(len(test)))))
    count = x_test[:, names.index("item_log_count")]
    rows.append(RankerRow("popularity (count)", feature_s, evaluate_scores(test, count)))
    rows.append(
        _per_target(
            "popularity (rate)", feature_s, test, lambda t: x_test[:, names.index(f"item_{t}")]
        )
    )
    rows.append(_logistic_row(train, test, train_labels))

    for backend in backends:
        t0 = time.perf_counter()
        ranker = MultiTaskRanker(
            seed=seed,
            backend=backend,
            feature_names=names,
            margins=MARGINS,
            **RANKER_HYPER[backend],
        )
        ranker.fit(x_train, labels)
        fit_s = feature_s + time.perf_counter() - t0
        heads = ranker.predict(x_test)
        rows.append(
            RankerRow(
                f"ranker/{backend} (score)", fit_s, evaluate_scores(test, ranker.score(x_test))
            )
        )
        rows.append(_per_target(f"ranker/{backend} (task head)", fit_s, test, heads.__getitem__))
    return rows


def _per_target(
    name: str, fit_s: float, test: pd.DataFrame, scores_for: Callable[[str], np.ndarray]
) -> RankerRow:
    """A row whose score differs per target (a popularity rate, a task head)."""
    row = RankerRow(name, fit_s)
    for target in TARGETS:
        row.metrics[target] = evaluate_scores(test, scores_for(target))[target]
    return row


# -- the logistic-regression baseline ------------------------------------------------------------


def _logistic_row(
    train: pd.DataFrame, test: pd.DataFrame, labels: dict[str, np.ndarray]
) -> RankerRow:
    """Plain L2 logistic regression per target on one-hot user + one-hot item + duration."""
    t0 = time.perf_counter()
    design = _OneHotDesign(train)
    x_train, x_test = design.matrix(train), design.matrix(test)
    scores = {}
    for target in TARGETS:
        y = labels[target]
        ok = ~np.isnan(y)
        w = _fit_logistic(x_train[ok], y[ok])
        scores[target] = x_test @ w
    fit_s = time.perf_counter() - t0
    return _per_target("logistic regression", fit_s, test, scores.__getitem__)


class _OneHotDesign:
    """Columns: intercept, one-hot user, one-hot item, standardized log duration, its bucket."""

    def __init__(self, train: pd.DataFrame) -> None:
        self.users = np.unique(train["user_id"].to_numpy(np.int64))
        self.items = np.unique(train["item_id"].to_numpy(np.int64))
        d = self._log_duration(train)
        self.mu, self.sd = float(d.mean()), float(d.std() + 1e-9)
        self.edges = np.quantile(d, np.linspace(0, 1, 9)[1:-1])

    @staticmethod
    def _log_duration(frame: pd.DataFrame) -> np.ndarray:
        return np.log1p(frame["duration_ms"].to_numpy(np.float64) / 1000.0)

    def matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        n = len(frame)
        u = index_of(self.users, frame["user_id"].to_numpy(np.int64))
        i = index_of(self.items, frame["item_id"].to_numpy(np.int64))
        u_ok, i_ok = u >= 0, i >= 0
        d = self._log_duration(frame)
        bucket = np.searchsorted(self.edges, d, side="right")
        n_u, n_i = len(self.users), len(self.items)
        rows = np.arange(n)
        parts = [
            (rows, np.zeros(n, np.int64), np.ones(n)),
            (rows[u_ok], 1 + u[u_ok], np.ones(u_ok.sum())),
            (rows[i_ok], 1 + n_u + i[i_ok], np.ones(i_ok.sum())),
            (rows, np.full(n, 1 + n_u + n_i), (d - self.mu) / self.sd),
            (rows, 2 + n_u + n_i + bucket, np.ones(n)),
        ]
        r, c, v = (np.concatenate(p) for p in zip(*parts, strict=True))
        shape = (n, 2 + n_u + n_i + len(self.edges) + 1)
        return sp.csr_matrix((v, (r, c)), shape=shape)


def _fit_logistic(x: sp.csr_matrix, y: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Weights minimizing Σ cross-entropy + ||w||² / (2c), intercept unpenalized (sklearn's C).

    Soft labels in [0, 1] are allowed (the watch ratio).
    """
    penalty = np.ones(x.shape[1])
    penalty[0] = 0.0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        ce = np.logaddexp(0.0, z) - y * z
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        grad = x.T @ (p - y) + penalty * w / c
        return float(ce.sum() + 0.5 * np.sum(penalty * w * w) / c), grad

    res = scipy.optimize.minimize(
        loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500}
    )
    return np.asarray(res.x)


# -- reporting -----------------------------------------------------------------------------------


def summarize(runs: list[list[RankerRow]]) -> list[RankerRow]:
    """Per model the mean over runs (seeds), with the standard deviation as ``sd_*`` metrics."""
    out = []
    for same in zip(*runs, strict=True):
        row = RankerRow(same[0].model, float(np.mean([r.fit_s for r in same])))
        for target in TARGETS:
            cell: dict[str, float] = {}
            for m in ("auc", "ndcg"):
                values = [r.metrics[target][m] for r in same]
                cell[m], cell[f"sd_{m}"] = float(np.mean(values)), float(np.std(values))
            row.metrics[target] = cell
        out.append(row)
    return out


def rows_to_json(rows: list[RankerRow], seeds: tuple[int, ...] = (0,)) -> dict[str, Any]:
    return {
        "dataset": "KuaiRand-1K random exposure",
        "train_days": "2022-04-22..2022-05-03",
        "test_days": "2022-05-04..2022-05-08",
        "metrics": "per-user AUC and NDCG over test impressions, averaged over users",
        "seeds": list(seeds),
        "rows": [
            {"model": r.model, "fit_s": round(r.fit_s, 3), "metrics": r.metrics} for r in rows
        ],
    }


def rows_to_table(rows: list[RankerRow], n_seeds: int = 1) -> Any:
    """A rich table: one row per model, AUC / NDCG per target (mean ± sd over seeds)."""
    from rich.table import Table

    title = "Ranker on KuaiRand-1K (train 04-22..05-03, test 05-04..05-08, per user"
    table = Table(title=f"{title}, {n_seeds} seeds: mean ± sd)" if n_seeds > 1 else f"{title})")
    table.add_column("model")
    for target in TARGETS:
        table.add_column(f"{target} AUC", justify="right")
        table.add_column(f"{target} NDCG", justify="right")
    table.add_column("fit s", justify="right")
    for r in rows:
        cells = [_cell(r.metrics[t], m) for t in TARGETS for m in ("auc", "ndcg")]
        table.add_row(r.model, *cells, f"{r.fit_s:.1f}")
    return table


def _cell(metrics: dict[str, float], name: str) -> str:
    sd = metrics.get(f"sd_{name}")
    return f"{metrics[name]:.4f}" if sd is None else f"{metrics[name]:.4f} ± {sd:.4f}"


def run_and_report(
    json_path: Path | None = None,
    *,
    seed: int = 0,
    seeds: tuple[int, ...] | None = None,
    backends: tuple[str, ...] = ("lightgbm", "mlp"),
) -> list[RankerRow]:
    """Run on the shipped KuaiRand log, print the table, optionally write JSON.

    With several ``seeds`` (feature folds, models, the random baseline) every
    number is the mean over them, shown with its standard deviation.
    """
    from rich.console import Console

    from trustfeed.data import load_kuairand
    from trustfeed.recommend._ranker import HAVE_LIGHTGBM

    usable = tuple(b for b in backends if b != "lightgbm" or HAVE_LIGHTGBM)
    log = load_kuairand()
    chosen = seeds or (seed,)
    runs = [run_ranker_bench(log, seed=s, backends=usable) for s in chosen]
    rows = summarize(runs) if len(runs) > 1 else runs[0]
    Console(width=200).print(rows_to_table(rows, len(runs)))
    if json_path is not None:
        json_path.write_text(json.dumps(rows_to_json(rows, chosen), indent=2) + "\n")
    return rows

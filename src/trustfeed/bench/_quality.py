"""``trustfeed bench quality``: ours and the peers, tuned alike and measured alike.

The procedure, the same for every model:

1. Split the dataset into train and test by its protocol, then carve
   validation out of train by the same split (model selection never sees
   test).
2. Fit every point of the model's own small grid (``param_grid``, 1–6
   points) on the validation-train part; keep the best by NDCG@10 on
   validation (the first point wins ties).
3. Refit the best point on the whole train and evaluate on test, in a fresh
   child process, so the child's ``ru_maxrss`` is that model's peak memory
   and nothing one model left behind counts against the next.

The children come from a *forkserver*: plain ``fork`` deadlocks once the
parent has run OpenMP code (implicit, lightfm, under libgomp), and on Linux a
``spawn``-ed child inherits the parent's peak RSS through ``exec``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import inspect
import json
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from trustfeed.bench._errors import BenchError
from trustfeed.bench._peers import PEERS, Params, import_peer
from trustfeed.data import DATASET_NAMES, Dataset, load_dataset, split_for
from trustfeed.evaluation import evaluate_model

if TYPE_CHECKING:
    from rich.console import Console

    from trustfeed.recommend._base import RecommenderModel

#: Our recommender's name in the results.
OURS = "trustfeed"
#: Every model ``run_quality`` knows, ours first.
MODELS: tuple[str, ...] = (OURS, *PEERS)
#: The validation metric that picks each model's parameters.
SELECT_BY = "ndcg@10"
KS = (10, 20)

Loader = Callable[[str, Path], Dataset]
Result = dict[str, Any]


def run_quality(
    dataset: str,
    datasets_dir: Path,
    models: Sequence[str] | None = None,
    seed: int = 42,
    json_path: Path | None = None,
    console: Console | None = None,
    *,
    threads: int = 1,
    loader: Loader = load_dataset,
) -> list[Result]:
    """Tune, fit and evaluate ``models`` (default: all of :data:`MODELS`) on ``dataset``.

    Prints the side-by-side table to ``console`` and, with ``json_path``,
    writes the results there. ``loader`` reads the dataset (tests pass a
    small one); ``threads`` caps BLAS and the peers' own thread pools. One
    thread is the default: results then repeat exactly (BPR's and LightFM's
    SGD races across threads), and on a shared two-core box two-thread BLAS
    made the run three times slower.
    """
    names = check_models(models)
    if dataset not in DATASET_NAMES:
        raise BenchError(f"unknown dataset {dataset!r}; valid names: {', '.join(DATASET_NAMES)}")
    console = console if console is not None else _default_console()
    data = loader(dataset, Path(datasets_dir))
    split = split_for(data.protocol)
    train, test = split(data.interactions)
    fit_part, validation = split(train)
    console.print(
        f"[bold]{dataset}[/] ({data.protocol}): {len(train):,} train / {len(test):,} test "
        f"interactions, {train['user_id'].nunique():,} users, {train['item_id'].nunique():,} items"
    )
    results = []
    with _thread_limit(threads):
        for name in names:
            best, grid = tune(name, fit_part, validation, seed, threads, console)
            result = _final_fit(name, best, seed, threads, train, test)
            results.append({"model": name, "params": best, **result, "grid": grid})
    console.print(quality_table(results, dataset))
    for result in results:
        console.print(f"  {result['model']}: {_format_params(result['params'])}")
    for line in ratio_lines(results):
        console.print(line)
    if json_path is not None:
        _write_json(json_path, dataset, data.protocol, seed, (train, test), results)
    return results


def check_models(models: Sequence[str] | None) -> list[str]:
    """The requested model names, checked; ``None`` means all of them."""
    names = list(MODELS) if models is None else [m.strip() for m in models if m.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise BenchError(
            f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
            f"valid names: {', '.join(MODELS)}"
        )
    return names


def model_class(name: str) -> Any:
    """The class behind a model name (ours is imported only when asked for)."""
    if name != OURS:
        return PEERS[name]
    recommender = getattr(importlib.import_module("trustfeed.recommend"), "Recommender", None)
    if recommender is None:
        raise BenchError(f"{OURS}: trustfeed.recommend has no Recommender")
    return recommender


def tune(
    name: str,
    fit_part: pd.DataFrame,
    validation: pd.DataFrame,
    seed: int,
    threads: int,
    console: Console,
) -> tuple[Params, list[Result]]:
    """The best grid point of model ``name`` on validation, and every point's score."""
    cls = model_class(name)
    size = (int(fit_part["user_id"].nunique()), int(fit_part["item_id"].nunique()))
    grid_of = getattr(cls, "param_grid", None)
    grid: list[Params] = list(grid_of(size)) if grid_of is not None else [{}]
    if len(grid) <= 1:
        return (grid[0] if grid else {}), []
    started = time.perf_counter()
    scored: list[Result] = []
    for params in grid:
        model = build(cls, seed, params, threads).fit(fit_part)
        score = evaluate_model(model, fit_part, validation, ks=(10,))[SELECT_BY]
        scored.append({"params": params, SELECT_BY: score})
    best = max(scored, key=lambda point: point[SELECT_BY])  # first of equals
    console.print(
        f"  {name}: {len(grid)} points in {time.perf_counter() - started:.1f} s, "
        f"best {_format_params(best['params'])} ({SELECT_BY} {best[SELECT_BY]:.4f} on validation)"
    )
    return best["params"], scored


def build(cls: Any, seed: int, params: Params, threads: int) -> Any:
    """``cls(seed=seed, **params)``, plus ``num_threads`` where the model takes it."""
    if "num_threads" in inspect.signature(cls).parameters and "num_threads" not in params:
        params = {**params, "num_threads": threads}
    return cls(seed=seed, **params)


def _final_fit(
    name: str,
    params: Params,
    seed: int,
    threads: int,
    train: pd.DataFrame,
    test: pd.DataFrame,
) -> Result:
    """Run :func:`measure` for one model in a fresh forkserver child."""
    context = multiprocessing.get_context("forkserver")
    # IPC only: the frames travel to the child through multiprocessing's pipe.
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(measure, name, params, seed, threads, train, test).result()


def measure(
    name: str,
    params: Params,
    seed: int,
    threads: int,
    train: pd.DataFrame,
    test: pd.DataFrame,
) -> Result:
    """Fit on ``train``, evaluate on ``test``; times and this process's peak RSS."""
    with _thread_limit(threads):
        base_rss = peak_rss_mb()
        model = build(model_class(name), seed, params, threads)
        started = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - started
        timed = _TimedRecommend(model)
        metrics = evaluate_model(timed, train, test, ks=KS)
    return {
        **metrics,
        "fit_s": fit_s,
        "recommend_s": timed.seconds,
        "peak_rss_mb": peak_rss_mb(),
        "base_rss_mb": base_rss,
        "n_test_users": int(test["user_id"].nunique()),
    }


class _TimedRecommend:
    """A model whose ``recommend`` calls add up their wall time."""

    def __init__(self, model: RecommenderModel) -> None:
        self.model = model
        self.seconds = 0.0

    def fit(self, interactions: pd.DataFrame) -> Self:
        self.model.fit(interactions)
        return self

    def recommend(
        self, user_ids: npt.ArrayLike, k: int = 20, exclude_seen: bool = True
    ) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.model.recommend(user_ids, k=k, exclude_seen=exclude_seen)
        finally:
            self.seconds += time.perf_counter() - started


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


@contextlib.contextmanager
def _thread_limit(threads: int) -> Iterator[None]:
    """Cap BLAS/OpenMP pools (threadpoolctl comes with the bench extra)."""
    try:
        threadpoolctl = import_peer("threadpoolctl")
    except BenchError:
        yield
        return
    with threadpoolctl.threadpool_limits(threads):
        yield


def quality_table(results: list[Result], dataset: str) -> Any:
    """The side-by-side rich table of ``results``."""
    from rich.table import Table

    table = Table(title=f"trustfeed bench quality — {dataset} (test split)")
    columns = ["model", "R@10", "N@10", "HR@10", "R@20", "N@20", "HR@20", "Cov@10"]
    columns += ["fit s", "rec s", "RSS MB"]
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results:
        metrics = [f"{r[f'{m}@{k}']:.4f}" for k in KS for m in ("recall", "ndcg", "hr")]
        table.add_row(
            r["model"],
            *metrics,
            f"{r['coverage@10']:.3f}",
            f"{r['fit_s']:.2f}",
            f"{r['recommend_s']:.2f}",
            f"{r['peak_rss_mb']:.0f}",
        )
    return table


def ratios(results: list[Result]) -> dict[str, Result]:
    """Ours over the best peer on NDCG@10 and HR@10 (empty without both sides)."""
    ours = [r for r in results if r["model"] == OURS]
    peers = [r for r in results if r["model"] != OURS]
    if not ours or not peers:
        return {}
    out = {}
    for metric in ("ndcg@10", "hr@10"):
        best = max(peers, key=lambda r: r[metric])
        ratio = ours[0][metric] / best[metric] if best[metric] > 0 else float("inf")
        out[metric] = {
            "ratio": ratio,
            "ours": ours[0][metric],
            "best_peer": best["model"],
            "best_peer_value": best[metric],
        }
    return out


def ratio_lines(results: list[Result]) -> list[str]:
    """:func:`ratios` as sentences for the console."""
    return [
        f"{OURS} / best peer ({r['best_peer']}) on {metric}: {r['ratio']:.3f} "
        f"({r['ours']:.4f} vs {r['best_peer_value']:.4f})"
        for metric, r in ratios(results).items()
    ]


def _format_params(params: Params) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items()) or "-"


def _write_json(
    path: Path,
    dataset: str,
    protocol: str,
    seed: int,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    results: list[Result],
) -> None:
    train, test = frames
    report = {
        "dataset": dataset,
        "protocol": protocol,
        "seed": seed,
        "select_by": SELECT_BY,
        "n_train": len(train),
        "n_test": len(test),
        "results": results,
        "ratios": ratios(results),
    }
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _default_console() -> Console:
    from rich.console import Console

    console = Console()
    # Off a terminal rich assumes 80 columns, too narrow for the table.
    return console if console.is_terminal else Console(width=120)

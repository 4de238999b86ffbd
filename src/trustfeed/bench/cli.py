"""``trustfeed bench …``: side-by-side benchmarks against peer recommenders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks against peer recommenders.")


@bench_app.command("quality")
def quality(
    dataset: Annotated[str, typer.Option(help="ml-100k, beauty or lastfm.")],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results to this JSON file.")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated subset of trustfeed,popularity,ease,als,bpr,lightfm."),
    ] = None,
    datasets_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory of the datasets; default: the TRUSTFEED_DATASETS_DIR setting."
        ),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(min=1, help="Threads for BLAS and the peers' own pools; 1 repeats exactly."),
    ] = 1,
) -> None:
    """Tune every model on validation, then compare them on the test split."""
    # Imported here so `trustfeed --help` stays fast and needs no dataset code.
    from trustfeed.bench._errors import BenchError
    from trustfeed.bench._quality import check_models, run_quality
    from trustfeed.data import DATASET_NAMES, DataError
    from trustfeed.settings import load_settings

    if dataset not in DATASET_NAMES:
        _fail(f"unknown dataset {dataset!r}; valid names: {', '.join(DATASET_NAMES)}")
    settings = load_settings()
    root = datasets_dir if datasets_dir is not None else settings.datasets_dir
    if not root.is_dir():
        _fail(
            f"datasets directory {root} not found; pass --datasets-dir "
            "or set TRUSTFEED_DATASETS_DIR"
        )
    try:
        names = check_models(models.split(",")) if models is not None else None
        run_quality(dataset, root, names, seed=settings.seed, json_path=json_path, threads=threads)
    except (BenchError, DataError) as exc:
        _fail(str(exc))


@bench_app.command("ranker")
def ranker(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results to this JSON file.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the feature folds and the models.")] = 0,
) -> None:
    """The multi-task ranker against popularity and logistic regression on KuaiRand-1K."""
    from trustfeed.bench._ranker_bench import run_and_report

    run_and_report(json_path, seed=seed)


@bench_app.command("online")
def online(
    batch: int = typer.Option(10_000, min=1, help="Events per partial_fit call."),
    probes: int = typer.Option(200, min=10, help="Single events timed for freshness."),
    seed: int = typer.Option(42, help="Seed of the generated world that is replayed."),
) -> None:
    """partial_fit events/s and event → visible-in-feed latency (p50/p99) on a replayed log."""
    from trustfeed.bench._online import run_online

    run_online(batch=batch, probes=probes, seed=seed)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)

"""``trustfeed demo``: the project's main job on the embedded default.

It runs the whole platform (:mod:`trustfeed.service`) on a generated
short-video world (or a user's own log) with SQLite and the local event log:
every video is uploaded through content security (a few are seeded as
known-bad in a hash bank, a few carry offensive captions); the first 70 % of
the events are ingested (durable log → vault → pseudonymous stream → model),
the next 20 % stream in online with their freshness measured; feeds are
served with reasons under the policy point and scored on the last 10 %
against a popularity baseline; a checkpoint is signed and the whole ledger
verified. The world's behaviour is calibrated to KuaiRand-1K (see
:mod:`trustfeed.data._world` for the figures).

Held-out truth: a held-out (user, video) pair counts as a *positive* when
the user watched at least half of the video or liked or shared it, and did
not hate it; skips and short views are not positives. Positives the feed
could not have contained are counted and shown: videos uploaded after the
feed was served, and videos the user had already met.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from trustfeed.errors import TrustfeedError

if TYPE_CHECKING:
    from trustfeed.data._world import World

#: Watch ratio from which a held-out view counts as a positive.
POSITIVE_WATCH_RATIO = 0.5
FIT_SHARE, STREAM_SHARE = 0.7, 0.2  # the rest is held out
STREAM_CHUNKS = 10
EXAMPLE_USERS = 3
FEED_K = 10
KS = (10, 20)


@dataclass(frozen=True)
class _Parts:
    """The demo's data: the log cut in time, and what is known about the world."""

    fit: pd.DataFrame
    stream: pd.DataFrame
    held_out: pd.DataFrame
    items: pd.DataFrame | None
    world: World | None  # None for a user's own dataset


def demo(
    seed: Annotated[int, typer.Option(min=0, help="Seed for the world and the model.")] = 42,
    users: Annotated[int, typer.Option(min=1, help="Users in the generated world.")] = 2000,
    items: Annotated[int, typer.Option(min=1, help="Videos in the generated world.")] = 1500,
    events: Annotated[
        int, typer.Option(min=100, help="Impressions in the generated world.")
    ] = 120_000,
    dataset: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Use this CSV/Parquet interaction log instead of a generated world.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory of the demo deployment [default: $TRUSTFEED_HOME/demo]."),
    ] = None,
    text_models: Annotated[
        bool, typer.Option(help="Also screen captions with the MiniLM similarity model.")
    ] = False,
    serve: Annotated[
        bool, typer.Option(help="Keep serving the API and console on the demo world.")
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for --serve.")] = 8000,
) -> None:
    """Run the whole platform on a seeded short-video world (or your own log) and report."""
    from trustfeed.demo import _platform_run as run

    console = Console()
    began = time.perf_counter()
    parts = _load(console, seed, users, items, events, dataset)
    home = _out_dir(out)
    report = run.RunReport()
    try:
        platform, scorers = run.open_fresh(home, seed, text_models=text_models)
    except (OSError, TrustfeedError) as exc:
        raise _fail(f"cannot open the demo deployment in {home}: {exc}") from exc
    try:
        _platform_steps(console, platform, scorers, parts, seed, report)
        _summary(console, platform, report, time.perf_counter() - began)
        if serve:
            _serve(console, platform, port)
    finally:
        platform.close()


def _platform_steps(
    console: Console, platform: Any, scorers: list[Any], parts: _Parts, seed: int, report: Any
) -> None:
    from trustfeed.demo import _platform_run as run

    console.rule("[bold]2. uploads through content security")
    run.upload_catalogue(console, platform, scorers, _catalogue(parts), seed, report)
    console.print(
        f"{sum(report.statuses.values()):,} videos screened in {report.uploads_s:.1f} s: "
        + ", ".join(f"{n:,} {s}" for s, n in report.statuses.most_common())
    )
    console.rule("[bold]3. ingest → log → vault → pseudonymous stream → model (first 70 %)")
    run.ingest(console, platform, parts.fit, "history", report)
    with platform.model_lock:
        platform.model.refresh()
    console.print(
        f"{len(parts.fit):,} events: appended durably at "
        f"{report.ingest_events_per_s:,.0f} events/s; "
        f"through vault and model at {report.end_to_end_events_per_s:,.0f} events/s"
    )
    console.rule("[bold]4. online training: the next 20 %, batch by batch")
    run.stream_with_freshness(console, platform, parts.stream, report)
    fresh = np.array(report.freshness_ms)
    console.print(
        f"{len(parts.stream):,} events in batches of {run.STREAM_BATCH}: ack → in the model "
        f"median {np.median(fresh):.0f} ms, p99 {np.percentile(fresh, 99):.0f} ms"
    )
    with platform.model_lock:
        platform.model.refresh()
    seen = pd.concat([parts.fit, parts.stream], ignore_index=True)
    _show_feeds(console, platform, parts, seen, seed)
    _evaluate(console, run.PlatformModel(platform), parts, seen, seed)


def _catalogue(parts: _Parts) -> pd.DataFrame:
    """The world's videos, or for a user's own log one entry per item it names."""
    if parts.items is not None:
        return parts.items
    log = pd.concat([parts.fit, parts.stream], ignore_index=True)
    catalogue = pd.DataFrame({"item_id": np.unique(log["item_id"].to_numpy(np.int64))})
    catalogue["creator_id"], catalogue["topic"] = "unknown", "unknown"
    if "duration_ms" in log:
        lengths = log.groupby("item_id")["duration_ms"].median()
        catalogue["duration_ms"] = catalogue["item_id"].map(lengths).fillna(30_000).astype(int)
    return catalogue


def _summary(console: Console, platform: Any, report: Any, took: float) -> None:
    from trustfeed.demo import _platform_run as run

    console.rule("[bold]7. custody: what an auditor can check")
    entries, signer = run.verify_checkpoint(platform)
    health = platform.health()
    table = Table("what", "figure", show_header=False)
    table.add_row("events in the durable log", f"{health['log_offset']:,}")
    table.add_row(
        "sealed into the vault / trained on",
        f"{health['vault_position']:,} / {health['model_position']:,}",
    )
    table.add_row("durable ingest rate", f"{report.ingest_events_per_s:,.0f} events/s")
    fresh = np.array(report.freshness_ms)
    table.add_row(
        "freshness (ack → model), median / p99",
        f"{np.median(fresh):.0f} / {np.percentile(fresh, 99):.0f} ms",
    )
    blocked = sum(report.blocked_reasons.values())
    table.add_row("videos not served", f"{blocked:,} of {len(platform.catalog):,}")
    for reason, n in report.blocked_reasons.most_common(6):
        table.add_row("  why", f"{n:,} × {reason}")
    table.add_row("ledger entries", f"{entries:,}")
    table.add_row(
        "checkpoint", f"signed by {signer}; [bold green]verified[/] (every entry recomputed)"
    )
    table.add_row("deployment", str(platform.config.home))
    console.print(table)
    console.rule(f"[bold]done in {took:.1f} s")


def _serve(console: Console, platform: Any, port: int) -> None:
    import uvicorn

    from trustfeed.api import create_app

    token = platform.bootstrap_token()
    platform.start()
    console.print(
        f"serving on [bold]http://127.0.0.1:{port}/console[/] (API docs: /docs); "
        f"custodian token: {token or platform.config.home / 'keys' / 'admin.token'}"
    )
    uvicorn.run(create_app(platform), host="127.0.0.1", port=port, log_level="warning")


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


# --- data ------------------------------------------------------------------------


def _load(
    console: Console, seed: int, users: int, items: int, events: int, dataset: Path | None
) -> _Parts:
    from trustfeed.data._world import generate_world, split_by_time

    if dataset is not None:
        log, catalogue, world = _read_dataset(console, dataset), None, None
    else:
        console.rule("[bold]1. a short-video world")
        started = time.perf_counter()
        world = generate_world(
            n_users=users,
            n_creators=max(1, items // 25),
            n_items=items,
            n_events=events,
            seed=seed,
        )
        log, catalogue = world.interactions, world.items
        console.print(
            f"{users:,} users, {len(world.creators):,} creators, {items:,} videos in "
            f"{len(world.topics)} topics; {len(log):,} events over "
            f"{(world.end - world.start) / 86_400:.0f} days "
            f"({time.perf_counter() - started:.1f} s, seed {seed})"
        )
    fit, rest = split_by_time(log, FIT_SHARE)
    stream, held_out = split_by_time(rest, STREAM_SHARE / (1.0 - FIT_SHARE))
    if fit.empty or stream.empty or held_out.empty:
        raise _fail(f"{len(log)} events are too few to split into fit, stream and held-out parts")
    if catalogue is not None:
        # The catalogue as it stands when feeds are served (end of the stream):
        # videos uploaded later do not exist yet and must not leak into feeds.
        catalogue = catalogue[catalogue["published_at"] <= stream["timestamp"].iloc[-1]]
    return _Parts(fit, stream, held_out, catalogue, world)


def _read_dataset(console: Console, path: Path) -> pd.DataFrame:
    from trustfeed.data import DataError, load_interactions

    console.rule(f"[bold]1. interactions from {path.name}")
    try:
        log = load_interactions(path)
    except DataError as exc:
        raise _fail(f"--dataset: {exc}") from exc
    except OSError as exc:
        raise _fail(f"--dataset {path}: {exc.strerror or exc}") from exc
    log = log.sort_values("timestamp", kind="stable", ignore_index=True)
    console.print(
        f"{len(log):,} events, {log['user_id'].nunique():,} users, "
        f"{log['item_id'].nunique():,} items"
    )
    return log


def positives(held_out: pd.DataFrame) -> pd.DataFrame:
    """The distinct (user, item) pairs of ``held_out`` that count as positives.

    Watched at least half (:data:`POSITIVE_WATCH_RATIO`), or liked or shared;
    never a pair the user hated. A log without watch times counts every view;
    one with neither events nor watch times counts every row.

    >>> log = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [5, 6, 5, 5],
    ...     "timestamp": [0.0, 1, 2, 3], "event": ["view", "skip", "view", "hate"],
    ...     "watch_ms": [9e3, 1e3, 9e3, 9e3], "duration_ms": [1e4, 1e4, 1e4, 1e4]})
    >>> positives(log)[["user_id", "item_id"]].values.tolist()
    [[1, 5]]
    """
    pairs = ["user_id", "item_id"]
    has_watch = {"watch_ms", "duration_ms"} <= set(held_out.columns)
    if "event" not in held_out.columns and not has_watch:
        return held_out[pairs].drop_duplicates(ignore_index=True)
    if "event" in held_out.columns:
        event = held_out["event"].astype("str")
    else:
        event = pd.Series("view", index=held_out.index)
    good = event.isin(["like", "share"]).to_numpy()
    if has_watch:
        ratio = held_out["watch_ms"] / held_out["duration_ms"].where(held_out["duration_ms"] > 0)
        good = good | ((ratio >= POSITIVE_WATCH_RATIO) & event.eq("view")).to_numpy()
    else:
        good = good | event.eq("view").to_numpy()  # nothing to judge a view by
    hated = pd.MultiIndex.from_frame(held_out.loc[event.eq("hate").to_numpy(), pairs])
    kept = held_out.loc[good, pairs].drop_duplicates(ignore_index=True)
    return kept[~pd.MultiIndex.from_frame(kept).isin(hated)].reset_index(drop=True)


def _when(timestamp: float) -> str:
    return pd.Timestamp(timestamp, unit="s").strftime("%m-%d %H:%M")


# --- feeds -----------------------------------------------------------------------


def _example_users(seen: pd.DataFrame, held_out: pd.DataFrame, seed: int) -> np.ndarray:
    """A few users with a history and a future, chosen by the seed."""
    counts = seen["user_id"].value_counts()
    active = counts[counts >= counts.median()].index.to_numpy(np.int64)
    candidates = np.intersect1d(active, held_out["user_id"].unique())
    if len(candidates) == 0:
        candidates = np.sort(counts.index.to_numpy(np.int64))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=min(EXAMPLE_USERS, len(candidates)), replace=False))


def _show_feeds(
    console: Console, platform: Any, parts: _Parts, seen: pd.DataFrame, seed: int
) -> None:
    from trustfeed.demo._platform_run import operator, user_key

    console.rule("[bold]5. feeds (as the API serves them), and why each video is in them")
    for user in _example_users(seen, parts.held_out, seed):
        history = seen[seen["user_id"] == user]
        console.print(
            f"\n[bold]user {user}[/]: {len(history):,} events so far; {_interests(parts, user)}"
        )
        page = platform.feed(operator(platform), user_key(user), k=FEED_K)
        items = np.array([e["item_id"] for e in page["items"]], np.int64)
        scores = np.array([e["score"] for e in page["items"]])
        console.print(_feed_table(parts, items, scores, [e["reasons"] for e in page["items"]]))


def _interests(parts: _Parts, user: int) -> str:
    world = parts.world
    if world is None or not 0 <= user < len(world.users):
        return "interests unknown (a real log)"
    weights = world.user_interest[user]
    top = np.argsort(-weights)[:3]
    return "interests " + ", ".join(f"{world.topics[t]} {weights[t]:.0%}" for t in top)


def _feed_table(parts: _Parts, items: np.ndarray, scores: np.ndarray, reasons: list[Any]) -> Table:
    catalogue = None if parts.world is None else parts.world.items.set_index("item_id")
    table = Table("#", "video", "topic", "length", "score", "source", "why")
    for rank, (item, score) in enumerate(zip(items, scores, strict=False), 1):
        if item < 0:
            continue
        reason = reasons[rank - 1] if rank - 1 < len(reasons) else {}
        topic, length = "", ""
        if catalogue is not None and int(item) in catalogue.index:
            row = catalogue.loc[int(item)]
            topic, length = str(row["topic"]), f"{row['duration_ms'] / 1000:.0f} s"
        table.add_row(
            str(rank),
            str(int(item)),
            topic,
            length,
            f"{float(score):.3f}",
            _reason_part(reason, "source"),
            _reason_part(reason, "text"),
        )
    return table


def _reason_part(reason: Any, name: str) -> str:
    """One field of a reason, whether the engine gives dicts, objects or lists of them."""
    if isinstance(reason, list | tuple):
        return "; ".join(_reason_part(r, name) for r in reason)
    if isinstance(reason, Mapping):
        return str(reason.get(name, ""))
    return str(getattr(reason, name, ""))


# --- quality ---------------------------------------------------------------------


def _evaluate(console: Console, rec: Any, parts: _Parts, seen: pd.DataFrame, seed: int) -> None:
    from trustfeed.bench._peers import Popularity
    from trustfeed.evaluation import evaluate_model

    console.rule("[bold]6. quality on the last 10 % (held out, never trained on)")
    truth = positives(parts.held_out)
    _describe_truth(console, parts, seen, truth)
    if truth.empty:
        console.print("no held-out positives: nothing to score")
        return
    baseline = Popularity(seed=seed).fit(seen)
    scores = {
        "trustfeed": evaluate_model(rec, seen, truth, ks=KS),
        "popularity": evaluate_model(baseline, seen, truth, ks=KS),
    }
    table = Table("metric", *scores)
    for metric in scores["trustfeed"]:
        table.add_row(metric, *(f"{s.get(metric, float('nan')):.4f}" for s in scores.values()))
    console.print(table)


def _describe_truth(
    console: Console, parts: _Parts, seen: pd.DataFrame, truth: pd.DataFrame
) -> None:
    held_pairs = parts.held_out[["user_id", "item_id"]].drop_duplicates()
    met = pd.MultiIndex.from_frame(truth).isin(
        pd.MultiIndex.from_frame(seen[["user_id", "item_id"]])
    )
    known = set(parts.items["item_id"]) if parts.items is not None else set(seen["item_id"])
    unknown = ~truth["item_id"].isin(known).to_numpy()
    console.print(
        f"{len(parts.held_out):,} held-out events, {len(held_pairs):,} (user, video) pairs; "
        f"[bold]{len(truth):,} positives[/] ({len(truth) / max(len(held_pairs), 1):.1%}: "
        f"watched ≥ {POSITIVE_WATCH_RATIO:.0%}, liked or shared, not hated) "
        f"for {truth['user_id'].nunique():,} users.\n"
        f"Out of any feed's reach: {int(unknown.sum()):,} on videos not yet uploaded or "
        f"never seen when the feeds were served, {int((met & ~unknown).sum()):,} on videos "
        f"the user had already met."
    )


# --- where ----------------------------------------------------------------------


def _out_dir(out: Path | None) -> Path:
    if out is not None:
        return out
    from pydantic import ValidationError

    from trustfeed.settings import load_settings

    try:
        return load_settings().home / "demo"
    except ValidationError as exc:
        raise _fail(f"settings: {exc}") from exc

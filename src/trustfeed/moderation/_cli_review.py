"""``trustfeed moderation queue|claim|decide|appeal|sor-export``: the review workflow.

Commands that change anything need ``--ledger`` (an existing ledger store):
every claim is in SQL, every decision, appeal and statement also in the
ledger. Leases use the wall clock, so a claim made by one command holds for
the next. Errors print one line and exit 2.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
import typer

from trustfeed.custody._errors import LedgerError
from trustfeed.custody.ledger import Ledger
from trustfeed.moderation._appeals import Appeals
from trustfeed.moderation._cli import _NoWrites, moderation_app
from trustfeed.moderation._dsa import StatementsOfReasons
from trustfeed.moderation._errors import ModerationError
from trustfeed.moderation._gate import Gate
from trustfeed.moderation._review import ReviewQueue
from trustfeed.moderation._status import Status
from trustfeed.moderation._strikes import Strikes
from trustfeed.moderation._taxonomy import Taxonomy
from trustfeed.storage import StorageError, open_engine

T = TypeVar("T")
Store = Annotated[str, typer.Option("--store", help="moderation store URL (sqlite:///…)")]
LedgerUrl = Annotated[str, typer.Option("--ledger", help="ledger store URL (must exist)")]
Moderator = Annotated[str, typer.Option("--moderator", help="your moderator id")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@contextlib.contextmanager
def _opened(store: str, ledger_url: str | None) -> Iterator[tuple[sa.Engine, Any]]:
    """The store's engine and a sink (the ledger, or one refusing writes); closed after."""
    try:
        engine = open_engine(store, must_exist=True)
    except StorageError as exc:
        raise _fail(str(exc)) from exc
    ledger = None
    try:
        ledger = Ledger.open(ledger_url, create=False) if ledger_url else None
        yield engine, ledger or _NoWrites()
    except LedgerError as exc:
        raise _fail(str(exc)) from exc
    finally:
        if ledger is not None:
            ledger.close()
        engine.dispose()


def _run(store: str, ledger_url: str | None, action: Callable[[Gate, sa.Engine, Any], T]) -> T:
    with _opened(store, ledger_url) as (engine, sink):
        try:
            return action(Gate(engine, sink=sink), engine, sink)
        except (ModerationError, ValueError) as exc:
            raise _fail(str(exc)) from exc


def _queue(gate: Gate, engine: sa.Engine, sink: Any) -> ReviewQueue:
    strikes = Strikes(engine, gate=gate, sink=sink)
    return ReviewQueue(engine, gate=gate, taxonomy=Taxonomy.load(), sink=sink, strikes=strikes)


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@moderation_app.command("queue")
def queue_command(
    store: Store,
    limit: Annotated[int, typer.Option(help="at most this many jobs")] = 50,
    queue: Annotated[
        str | None, typer.Option("--queue", help="only this named queue (default: all)")
    ] = None,
) -> None:
    """List the review jobs a moderator could claim now, most urgent first."""
    jobs = _run(store, None, lambda g, e, s: _queue(g, e, s).pending(limit, queue=queue))
    _echo([asdict(j) for j in jobs])


@moderation_app.command("claim")
def claim_command(
    job: Annotated[int, typer.Argument(help="review job id")],
    store: Store,
    ledger: LedgerUrl,
    moderator: Moderator,
) -> None:
    """Claim a job (an exclusive lease); media stays blurred until revealed."""
    view = _run(store, ledger, lambda g, e, s: _queue(g, e, s).claim(job, moderator))
    _echo(asdict(view))


@moderation_app.command("decide")
def decide_command(
    job: Annotated[int, typer.Argument(help="review job id")],
    store: Store,
    ledger: LedgerUrl,
    moderator: Moderator,
    action: Annotated[str, typer.Option(help="eligible, age_restricted, … removed")],
    policy: Annotated[str, typer.Option(help="policy id from the taxonomy")],
    note: Annotated[str, typer.Option(help="why, for the record")] = "",
) -> None:
    """Decide a claimed job: applies to every item in it, cites a policy."""
    try:
        status = Status(action)
    except ValueError as exc:
        raise _fail(f"unknown action {action!r}; one of {', '.join(Status)}") from exc

    def act(g: Gate, e: sa.Engine, s: Any) -> Any:
        return _queue(g, e, s).decide(
            job, moderator=moderator, action=status, policy_id=policy, note=note
        )

    _echo(asdict(_run(store, ledger, act)))


@moderation_app.command("appeal")
def appeal_command(
    item: Annotated[int, typer.Argument(help="the restricted item")],
    store: Store,
    ledger: LedgerUrl,
    appellant: Annotated[str, typer.Option(help="the creator appealing")],
    statement: Annotated[str, typer.Option(help="why the decision is wrong")],
) -> None:
    """File an appeal of the restriction on an item (a different moderator resolves it)."""

    def act(g: Gate, e: sa.Engine, s: Any) -> Any:
        return Appeals(e, gate=g, sink=s).file(item, appellant=appellant, statement=statement)

    _echo(asdict(_run(store, ledger, act)))


@moderation_app.command("sor-export")
def sor_export_command(
    store: Store,
    out: Annotated[
        Path | None, typer.Option("--out", help="JSON lines file (default stdout)")
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", help="ledger URL: first write statements for new restrictions"),
    ] = None,
) -> None:
    """Export the DSA statements of reasons as JSON lines."""

    def act(g: Gate, e: sa.Engine, s: Any) -> int:
        sor = StatementsOfReasons(e, gate=g, taxonomy=Taxonomy.load(), sink=s)
        if ledger:
            sor.sync()
        if out is None:
            return sor.export_jsonl(sys.stdout)
        with out.open("w", encoding="utf-8") as fh:
            return sor.export_jsonl(fh)

    try:
        count = _run(store, ledger, act)
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc}") from exc
    typer.echo(f"{count} statements of reasons", err=True)

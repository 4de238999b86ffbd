"""The ``trustfeed`` command: the only place (with the service entry point) that
reads settings from the environment; everything below it takes keyword arguments."""

from __future__ import annotations

import typer

from trustfeed import __version__
from trustfeed.api._serve import serve
from trustfeed.bench.cli import bench_app
from trustfeed.custody._cli import custody_app
from trustfeed.custody.ledger._cli import audit_app
from trustfeed.custody.vault._cli import user_app
from trustfeed.demo import demo
from trustfeed.moderation import _cli_review, _cli_text, _cli_video  # noqa: F401 (register)
from trustfeed.moderation._cli import moderation_app
from trustfeed.recommend.package._cli import package_app

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="trustfeed: short-video recommendation with verifiable custody.",
)
app.add_typer(bench_app, name="bench")
app.add_typer(audit_app, name="audit")
app.add_typer(custody_app, name="custody")
app.add_typer(user_app, name="user")
app.add_typer(moderation_app, name="moderation")
app.add_typer(package_app, name="package")
app.command()(demo)
app.command()(serve)


@app.command()
def version() -> None:
    """Print the installed trustfeed version."""
    typer.echo(__version__)

"""``trustfeed bench …``: side-by-side benchmarks against peer recommenders."""

from __future__ import annotations

import typer

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks against peer recommenders.")

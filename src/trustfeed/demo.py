"""``trustfeed demo``: the project's main job on the embedded default."""

from __future__ import annotations

import typer


def demo(seed: int = typer.Option(42, help="Seed for the generated world.")) -> None:
    """Generate a seeded short-video world, train the engine online, print feeds."""
    typer.echo(f"demo (seed {seed}): not yet assembled")

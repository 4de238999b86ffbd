"""``trustfeed moderation screen-text``: normalise a text, match text banks, print scores.

Importing this module adds the command to :data:`moderation_app`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from trustfeed.moderation._cli import moderation_app
from trustfeed.moderation._errors import ModerationError
from trustfeed.moderation.text import TextBanks, TextScreener, default_classifiers
from trustfeed.storage import StorageError, open_engine


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@moderation_app.command("screen-text")
def screen_text_command(
    text: Annotated[str, typer.Argument(help="the caption or comment to screen")],
    store: Annotated[
        str | None, typer.Option("--store", help="storage URL holding text banks")
    ] = None,
    embeddings: Annotated[
        bool, typer.Option(help="also score similarity to policy examples (the 'text' extra)")
    ] = True,
) -> None:
    """Print JSON: the normalised text, text-bank matches, every score, and the verdict."""
    if not text.strip():
        raise _fail("the text is empty")
    engine = None
    try:
        if store is not None:
            engine = open_engine(store, must_exist=True)
        banks = TextBanks(engine) if engine is not None else None
        classifiers = default_classifiers(embeddings=None if embeddings else False)
        report = TextScreener(banks=banks, classifiers=classifiers).screen_text(text)
    except (StorageError, ModerationError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        if engine is not None:
            engine.dispose()
    typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))

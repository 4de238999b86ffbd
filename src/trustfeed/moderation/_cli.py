"""``trustfeed moderation``: hash a file, or match it against the banks in a store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from trustfeed.moderation._banks import Banks
from trustfeed.moderation._errors import ModerationError
from trustfeed.moderation._gate import Gate
from trustfeed.moderation._media import hash_media
from trustfeed.moderation._signals import SignalValue
from trustfeed.storage import StorageError, open_engine

moderation_app = typer.Typer(help="Content security: media signals and hash-bank matches.")


class _NoWrites:
    """The sink for read-only commands: matching never moves an item, so never appends."""

    def append(self, entry: bytes) -> int:
        raise ModerationError("this command does not record transitions")

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        raise ModerationError("this command does not record transitions")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _signals(path: Path) -> list[SignalValue]:
    if not path.is_file():
        raise _fail(f"no such file: {path}")
    try:
        return hash_media(path.read_bytes())
    except ModerationError as exc:
        raise _fail(f"{path}: {exc}") from exc


def _as_json(values: list[SignalValue]) -> dict[str, object]:
    out: dict[str, object] = {}
    pdq = [v for v in values if v.signal == "pdq"]
    for v in values:
        if v.signal != "pdq":
            out[v.signal] = v.value
    if pdq:
        out["pdq"] = {
            "hash": pdq[0].value,
            "quality": pdq[0].quality,
            "dihedral": [v.value for v in pdq],
        }
    return out


@moderation_app.command("hash")
def hash_command(file: Annotated[Path, typer.Argument(help="an image file")]) -> None:
    """Print the file's signals as JSON: md5, sha256, and PDQ with quality and 8 variants."""
    typer.echo(json.dumps({"file": file.name, **_as_json(_signals(file))}, indent=2))


@moderation_app.command("match")
def match_command(
    file: Annotated[Path, typer.Argument(help="an image file")],
    store: Annotated[str, typer.Option("--store", help="storage URL holding the banks")],
) -> None:
    """Print the bank entries the file matches (and any allow-list that suppresses them)."""
    values = _signals(file)
    try:
        engine = open_engine(store, must_exist=True)
    except StorageError as exc:
        raise _fail(str(exc)) from exc
    try:
        result = Banks(engine, gate=Gate(engine, sink=_NoWrites())).match(values)
    finally:
        engine.dispose()
    rows = [
        {
            "bank": m.bank,
            "signal": m.signal,
            "entry": m.entry_id,
            "distance": m.distance,
            "variant": m.variant,
        }
        for m in result.matches
    ]
    suppressed = sorted({m.bank for m in result.suppressed_by})
    typer.echo(
        json.dumps({"file": file.name, "matches": rows, "suppressed_by": suppressed}, indent=2)
    )

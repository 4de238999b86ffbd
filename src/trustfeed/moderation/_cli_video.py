"""``trustfeed moderation vpdq FILE`` and ``trustfeed moderation rules dry-run``.

Importing this module adds the commands to :data:`moderation_app`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from trustfeed.moderation._banks import Banks
from trustfeed.moderation._cli import moderation_app
from trustfeed.moderation._errors import ModerationError
from trustfeed.moderation._gate import Gate
from trustfeed.moderation._rules import RuleEngine, RuleSet, StoredFacts, dry_run
from trustfeed.moderation._vpdq import (
    BANK_SECONDS_PER_HASH,
    UPLOAD_SECONDS_PER_HASH,
    VideoBank,
    hash_video_file,
)
from trustfeed.moderation.text import TextBanks, TextScoreLog
from trustfeed.storage import StorageError, open_engine

rules_app = typer.Typer(help="Moderation rules: check what a rule set would do.")
moderation_app.add_typer(rules_app, name="rules")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


class _NoWrites:
    """The ledger sink of a dry run: any attempt to record a transition is a bug."""

    def append(self, entry: bytes) -> int:
        raise ModerationError("a dry run never records transitions")

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        raise ModerationError("a dry run never records transitions")


@moderation_app.command("vpdq")
def vpdq_command(
    file: Annotated[Path, typer.Argument(help="a video file")],
    dense: Annotated[
        bool, typer.Option("--dense", help="hash every frame (how bank videos are hashed)")
    ] = False,
) -> None:
    """Print the video's vPDQ frame hashes as JSON (1 frame/s, as uploads are hashed)."""
    if not file.is_file():
        raise _fail(f"no such file: {file}")
    every = BANK_SECONDS_PER_HASH if dense else UPLOAD_SECONDS_PER_HASH
    try:
        video = hash_video_file(file, seconds_per_hash=every)
    except ModerationError as exc:
        raise _fail(f"{file}: {exc}") from exc
    frames = [
        {"frame": f.frame, "quality": f.quality, "hash": f.hash, "timestamp": round(f.timestamp, 3)}
        for f in video.frames
    ]
    out = {"file": file.name, "seconds_per_hash": every, "vpdq": video.to_json(), "frames": frames}
    typer.echo(json.dumps(out, indent=2))


@rules_app.command("dry-run")
def dry_run_command(
    store: Annotated[str, typer.Option("--store", help="storage URL of the moderation store")],
    rules: Annotated[Path, typer.Option("--rules", help="rule set JSON file")],
) -> None:
    """Print, as JSON, what the rule set would do to every stored item; change nothing."""
    if not rules.is_file():
        raise _fail(f"no such file: {rules}")
    try:
        engine = RuleEngine(RuleSet.load(rules))
        db = open_engine(store, must_exist=True)
    except (ModerationError, StorageError) as exc:
        raise _fail(str(exc)) from exc
    try:
        gate = Gate(db, sink=_NoWrites())
        banks = Banks(db, gate=gate)
        facts = StoredFacts(
            gate,
            banks,
            videos=VideoBank(db, banks=banks, gate=gate),
            text_banks=TextBanks(db),
            text_scores=TextScoreLog(db),
        )
        report = dry_run(engine, gate, facts)
    except ModerationError as exc:
        raise _fail(str(exc)) from exc
    finally:
        db.dispose()
    typer.echo(report.to_json())

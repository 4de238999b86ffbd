"""``trustfeed audit …``: what an outside auditor runs against a ledger store.

Exit codes: 0 verified, 1 verification failed (the message names the first bad
entry), 2 bad input (unreadable file, bad key, bad URL, no ledger there).
Proof JSON (``prove``, ``consistency``) renders every hash as lowercase hex:

    {"index": 5, "size": 8, "leaf_hash": "…", "root": "…", "proof": ["…", …]}
    {"old_size": 6, "new_size": 8, "old_root": "…", "new_root": "…", "proof": […]}
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from trustfeed.custody._errors import LedgerError, VerificationError
from trustfeed.custody._records import decode_record
from trustfeed.custody.ledger._ledger import Ledger
from trustfeed.custody.ledger._merkle import leaf_hash, verify_inclusion_leaf_hash
from trustfeed.custody.ledger._note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    generate_signing_key,
    open_checkpoint,
    parse_note,
    parse_verifier,
)
from trustfeed.custody.ledger._verify import AuditReport, audit_store
from trustfeed.storage import StorageError

audit_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Verify the audit ledger: whole-store audits, proofs, checkpoints, keys.",
)

Store = Annotated[
    str, typer.Option("--store", help="Ledger store URL (sqlite:///… or postgresql://…).")
]
PublicKey = Annotated[Path, typer.Option("--public-key", help="File with the log's verifier key.")]


class _BadInput(Exception):
    """Input the auditor must fix (exit 2)."""


def _fail(code: int, message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Map errors to the documented exit codes with one clear line, never a traceback."""
    try:
        yield
    except VerificationError as exc:
        where = f" (first bad entry: {exc.index})" if exc.index is not None else ""
        _fail(1, f"verification FAILED{where}: {exc}")
    except (_BadInput, LedgerError, StorageError, OSError, ValueError) as exc:
        _fail(2, f"error: {exc}")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadInput(f"cannot read {what} file {path}: {exc}") from exc


def _read_note(path: Path) -> str:
    text = _read(path, "checkpoint")
    try:
        parse_note(text)
    except VerificationError as exc:
        raise _BadInput(f"{path} is not a signed checkpoint: {exc}") from exc
    return text


def _open(store: str) -> Ledger:
    return Ledger.open(store, create=False)


def _with_ledger(store: str, action: Callable[[Ledger], Any]) -> Any:
    ledger = _open(store)
    try:
        return action(ledger)
    finally:
        ledger.close()


@audit_app.command()
def verify(
    store: Store,
    public_key: PublicKey,
    checkpoint: Annotated[
        Path | None, typer.Option(help="A checkpoint trusted earlier; must be consistent.")
    ] = None,
    witness_key: Annotated[
        list[Path] | None, typer.Option(help="Witness verifier key whose cosignature is required.")
    ] = None,
) -> None:
    """Recompute every entry's hash and check the store against its signed checkpoint."""
    with _exit_codes():
        keys = [_read(public_key, "public key")]
        witnesses = [_read(p, "witness key") for p in witness_key or []]
        trusted = _read_note(checkpoint) if checkpoint else None
        report = audit_store(store, keys, trusted_checkpoint=trusted, witness_keys=witnesses)
        _print_report(report)


def _print_report(report: AuditReport) -> None:
    table = Table(title="ledger verified", show_header=False)
    table.add_row("origin", report.origin)
    table.add_row("entries in store", str(report.entries))
    table.add_row("checkpoint size", str(report.checkpoint_size))
    table.add_row("checkpoint root", report.checkpoint_root.hex())
    table.add_row("signed by", ", ".join(report.signed_by))
    table.add_row("checkpoints matched", str(report.checkpoints_checked))
    if report.checkpoints_unverified:
        table.add_row("checkpoints ignored (bad signature)", str(report.checkpoints_unverified))
    if report.trusted_size is not None:
        table.add_row("consistent with trusted size", str(report.trusted_size))
    table.add_row("not yet covered by a checkpoint", str(report.uncovered))
    Console().print(table)


@audit_app.command()
def prove(
    store: Store,
    index: Annotated[int, typer.Option(help="Entry index.")],
    size: Annotated[int | None, typer.Option(help="Tree size (default: current).")] = None,
) -> None:
    """Print an inclusion proof as JSON (hashes in hex)."""
    with _exit_codes():

        def action(ledger: Ledger) -> dict[str, Any]:
            tree_size = ledger.size() if size is None else size
            proof = ledger.inclusion_proof(index, tree_size)
            return {
                "index": index,
                "size": tree_size,
                "leaf_hash": _leaf(ledger, index),
                "root": ledger.root_hash(tree_size).hex(),
                "proof": [h.hex() for h in proof],
            }

        typer.echo(json.dumps(_with_ledger(store, action), indent=2))


def _leaf(ledger: Ledger, index: int) -> str:
    return leaf_hash(ledger.entry(index)).hex()


@audit_app.command()
def consistency(
    store: Store,
    old_size: Annotated[int, typer.Option(help="Size of the older tree.")],
    new_size: Annotated[int | None, typer.Option(help="Size of the newer tree.")] = None,
) -> None:
    """Print a consistency proof as JSON (hashes in hex)."""
    with _exit_codes():

        def action(ledger: Ledger) -> dict[str, Any]:
            size = ledger.size() if new_size is None else new_size
            proof = ledger.consistency_proof(old_size, size)
            return {
                "old_size": old_size,
                "new_size": size,
                "old_root": ledger.root_hash(old_size).hex(),
                "new_root": ledger.root_hash(size).hex(),
                "proof": [h.hex() for h in proof],
            }

        typer.echo(json.dumps(_with_ledger(store, action), indent=2))


@audit_app.command()
def entries(
    store: Store,
    start: Annotated[int, typer.Option(help="First entry index.")] = 0,
    count: Annotated[int, typer.Option(help="How many entries at most.")] = 100,
    kind: Annotated[str | None, typer.Option(help="Only records of this kind.")] = None,
) -> None:
    """Print entries as JSON lines: index, leaf hash, and the record (or base64 bytes).

    Listing does not verify: run ``verify`` first, then read what it covered.
    """
    with _exit_codes():
        if start < 0 or count < 0:
            raise _BadInput("--start and --count must not be negative")

        def action(ledger: Ledger) -> list[dict[str, Any]]:
            stop = min(ledger.size(), start + count)
            rows = [_listing(start + i, e) for i, e in enumerate(ledger.entries(start, stop))]
            return [r for r in rows if kind is None or r.get("record", {}).get("kind") == kind]

        for row in _with_ledger(store, action):
            typer.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))


def _listing(index: int, entry: bytes) -> dict[str, Any]:
    row: dict[str, Any] = {"index": index, "leaf_hash": leaf_hash(entry).hex()}
    try:
        row["record"] = decode_record(entry)
    except ValueError:  # not one of our JSON records (json's errors are ValueErrors)
        row["base64"] = base64.b64encode(entry).decode()
    return row


@audit_app.command("checkpoint")
def show_checkpoint(store: Store) -> None:
    """Print the latest signed checkpoint note."""
    with _exit_codes():
        note = _with_ledger(store, lambda ledger: ledger.latest_checkpoint())
        if note is None:
            raise _BadInput("the store has no checkpoint yet")
        typer.echo(note, nl=False)


@audit_app.command("verify-proof")
def verify_proof(
    proof: Annotated[Path, typer.Option(help="Inclusion proof JSON from `prove`.")],
    checkpoint: Annotated[Path, typer.Option(help="Signed checkpoint the proof is for.")],
    public_key: PublicKey,
) -> None:
    """Check an inclusion proof offline against a signed checkpoint (no store needed)."""
    with _exit_codes():
        note = _read_note(checkpoint)
        verifier = parse_verifier(_read(public_key, "public key"))
        cp, _ = open_checkpoint(note, [verifier])
        index, size, leaf, hashes = _parse_proof(_read(proof, "proof"))
        if size != cp.size:
            raise VerificationError(f"proof is for size {size}, checkpoint is size {cp.size}")
        verify_inclusion_leaf_hash(leaf, index, size, hashes, cp.root)
        typer.echo(f"entry {index} is included in {cp.origin} at size {cp.size}")


def _parse_proof(text: str) -> tuple[int, int, bytes, list[bytes]]:
    try:
        data = json.loads(text)
        return (
            int(data["index"]),
            int(data["size"]),
            bytes.fromhex(data["leaf_hash"]),
            [bytes.fromhex(h) for h in data["proof"]],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise _BadInput(f"not an inclusion proof JSON: {exc}") from exc


@audit_app.command()
def keygen(
    name: Annotated[str, typer.Option(help="Key name (the log origin, or the witness name).")],
    out_dir: Annotated[Path, typer.Option(help="Directory for <name>.key and <name>.pub.")],
    witness: Annotated[bool, typer.Option(help="Make a witness (cosignature/v1) key.")] = False,
) -> None:
    """Write a signer key (mode 0600) and its verifier key."""
    with _exit_codes():
        signer, verifier = generate_signing_key(
            name, algorithm=ALG_COSIGNATURE_V1 if witness else ALG_ED25519
        )
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        out_dir.mkdir(parents=True, exist_ok=True)
        key_path, pub_path = out_dir / f"{stem}.key", out_dir / f"{stem}.pub"
        if key_path.exists():
            raise _BadInput(f"{key_path} exists; refusing to overwrite a signing key")
        key_path.touch(mode=0o600)
        key_path.chmod(0o600)
        key_path.write_text(signer + "\n", encoding="utf-8")
        pub_path.write_text(verifier + "\n", encoding="utf-8")
        typer.echo(f"wrote {key_path} (secret) and {pub_path}")


@audit_app.command()
def lineage(
    model_hash: Annotated[str, typer.Argument(help="SHA-256 of the saved model (hex).")],
    store: Store,
    public_key: Annotated[
        Path | None,
        typer.Option(help="Prove against the latest checkpoint this key signed, not the root."),
    ] = None,
) -> None:
    """Trace a model to its package approval, training data, code and evaluation.

    Every ledger entry the lineage refers to is proved included (exit 1 if not,
    or if the lineage is incomplete: no approval, non-domestic data, …).
    """
    # Imported here: the ledger must not depend on the recommender to open.
    from trustfeed.recommend.package import LineageError, render_lineage, trace_lineage

    with _exit_codes():
        if not re.fullmatch(r"[0-9a-f]{64}", model_hash):
            raise _BadInput(f"not a model hash (64 lowercase hex digits): {model_hash!r}")
        key = parse_verifier(_read(public_key, "public key")) if public_key else None
        try:
            report = _with_ledger(
                store, lambda ledger: trace_lineage(ledger, model_hash, checkpoint_key=key)
            )
        except LineageError as exc:
            _fail(1, f"lineage verification FAILED: {exc}")
        typer.echo(render_lineage(report), nl=False)
        if report.problems:
            _fail(1, f"lineage verification FAILED: {'; '.join(report.problems)}")

"""``trustfeed package …``: the licensor builds and signs; the custodian trusts, reviews, decides.

Licensor: ``keygen``, ``build DIR --out PKG``, ``sign PKG --key FILE``.
Custodian: ``trust-key PUBFILE``, ``verify PKG``, ``review PKG``,
``approve PKG --by ID``, ``reject PKG --by ID --reason TEXT``, ``decisions``.
The store defaults to ``TRUSTFEED_STORE_URL``; bad input, a modified or
unsigned package, or a refused decision is one line on stderr and exit 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from trustfeed.errors import TrustfeedError

package_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Algorithm packages: build and sign (licensor); trust keys, review, approve (custodian).",
)

PackageArg = Annotated[Path, typer.Argument(help="The package directory.")]
StoreOption = Annotated[
    str | None, typer.Option("--store", help="Custody store URL (default: TRUSTFEED_STORE_URL).")
]
ByOption = Annotated[str, typer.Option("--by", help="Who decides, e.g. custodian:alice.")]


def _run(action: Callable[[], Any]) -> Any:
    """Any refusal or bad input: one line on stderr, exit status 1, no traceback."""
    try:
        return action()
    except (TrustfeedError, ValueError) as exc:
        message = str(exc)
    except OSError as exc:
        message = f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
    except sa.exc.SQLAlchemyError as exc:
        message = f"storage failure: {getattr(exc, 'orig', None) or exc}"
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _registry(store: str | None) -> Any:
    from trustfeed.recommend.package._registry import PackageRegistry
    from trustfeed.settings import load_settings

    return PackageRegistry.open(store or load_settings().custody_store_url)


def _with_registry(store: str | None, action: Callable[[Any], str]) -> None:
    def run() -> str:
        with _registry(store) as registry:
            return action(registry)

    typer.echo(_run(run), nl=False)


# ----------------------------------------------------------------------------- licensor


@package_app.command()
def keygen(
    name: Annotated[str, typer.Option(help="Key name, e.g. licensor.example/packages.")],
    out_dir: Annotated[Path, typer.Option(help="Directory for <name>.key and <name>.pub.")],
) -> None:
    """Write the licensor's signing key (mode 0600) and public key (give it to the custodian)."""

    def make() -> str:
        from trustfeed.custody._private_file import write_private
        from trustfeed.recommend.package._signing import generate_licensor_key

        signer, verifier = generate_licensor_key(name)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        out_dir.mkdir(parents=True, exist_ok=True)
        key_path, pub_path = out_dir / f"{stem}.key", out_dir / f"{stem}.pub"
        try:
            write_private(key_path, (signer + "\n").encode())
        except FileExistsError as exc:
            raise ValueError(f"{key_path} exists; refusing to overwrite a signing key") from exc
        pub_path.write_text(verifier + "\n", encoding="utf-8")
        return f"wrote {key_path} (secret) and {pub_path}\n{verifier}\n"

    typer.echo(_run(make), nl=False)


@package_app.command()
def build(
    source: Annotated[Path, typer.Argument(help="Directory with config.json [and weights/].")],
    out: Annotated[Path, typer.Option("--out", help="Package directory to create.")],
) -> None:
    """Build a package: copy the files and write their manifest; prints the package id."""

    def make() -> str:
        from trustfeed.recommend.package._package import build_package

        package = build_package(source, out)
        return f"{package.id}\n"

    typer.echo(_run(make), nl=False)


@package_app.command()
def sign(
    package: PackageArg,
    key: Annotated[Path, typer.Option("--key", help="The licensor's signing key file.")],
) -> None:
    """Sign a package with the licensor's key (writes signature.note)."""

    def make() -> str:
        from trustfeed.recommend.package._signing import sign_package

        signed = sign_package(package, key.read_text(encoding="utf-8"))
        return f"signed {signed.id} ({signed.name} {signed.version})\n"

    typer.echo(_run(make), nl=False)


# ----------------------------------------------------------------------------- custodian


@package_app.command("trust-key")
def trust_key(
    public_key: Annotated[Path, typer.Argument(help="The licensor's public key file.")],
    by: ByOption,
    store: StoreOption = None,
) -> None:
    """Register a licensor public key; the registration goes into the ledger."""

    def trust(registry: Any) -> str:
        key = registry.trust_key(public_key.read_text(encoding="utf-8"), by=by)
        return f"trusted {key.name}+{key.key_id} (ledger entry {key.ledger_index})\n"

    _with_registry(store, trust)


@package_app.command()
def verify(package: PackageArg, store: StoreOption = None) -> None:
    """Check a package's bytes against its manifest and its signature against trusted keys."""

    def check(registry: Any) -> str:
        checked = registry.verify(package)
        state = "approved" if registry.approved(checked.id) else "not approved"
        return f"verified {checked.id} ({checked.name} {checked.version}); {state}\n"

    _with_registry(store, check)


@package_app.command()
def review(package: PackageArg, store: StoreOption = None) -> None:
    """Show what the package changes against the last approved package."""
    _with_registry(store, lambda registry: registry.review(package).render())


@package_app.command()
def approve(package: PackageArg, by: ByOption, store: StoreOption = None) -> None:
    """Approve a verified package for training and deployment (recorded in the ledger)."""

    def decide(registry: Any) -> str:
        d = registry.approve(package, by)
        return f"approved {d.package_id} ({d.name} {d.version}); ledger entry {d.ledger_index}\n"

    _with_registry(store, decide)


@package_app.command()
def reject(
    package: Annotated[str, typer.Argument(help="Package directory, or an approved package id.")],
    by: ByOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")],
    store: StoreOption = None,
) -> None:
    """Reject a package, or withdraw an approval (recorded in the ledger)."""

    def decide(registry: Any) -> str:
        d = registry.reject(package, by, reason)
        return f"rejected {d.package_id} ({d.name} {d.version}); ledger entry {d.ledger_index}\n"

    _with_registry(store, decide)


@package_app.command()
def decisions(store: StoreOption = None) -> None:
    """List every package decision, oldest first."""

    def listing(registry: Any) -> str:
        from trustfeed.recommend.package._review import when

        rows = [
            f"{when(d.decided_at)}  {d.decision:<8}  {d.package_id}  {d.name} {d.version}  "
            f"by {d.decided_by}  (ledger entry {d.ledger_index})"
            + (f"  {d.reason}" if d.reason else "")
            for d in registry.decisions()
        ]
        return "\n".join(rows) + "\n" if rows else "no package decisions yet\n"

    _with_registry(store, listing)

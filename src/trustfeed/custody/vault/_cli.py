"""``trustfeed user``: a user's export (GDPR Art. 15/20) and erasure (Art. 17).

Each command acts as the user themself (``--as user``, the default) or as a
custodian (``--as custodian``, which the base policies allow only under a
just-in-time ``--grant``); the real policy point decides and the ledger
records. Every failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
import typer

from trustfeed.custody._access import Action, Principal, Role
from trustfeed.custody._private_file import write_private
from trustfeed.custody.vault._requests import PURPOSE_ERASURE, PURPOSE_SUBJECT_ACCESS, user_request
from trustfeed.custody.vault._vault import Vault
from trustfeed.errors import TrustfeedError

user_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="A user's data: export everything held (Art. 15/20) or erase it (Art. 17).",
)

T = TypeVar("T")


class Acting(enum.StrEnum):
    """Who the command speaks for."""

    USER = "user"
    CUSTODIAN = "custodian"


Store = Annotated[str, typer.Option("--store", help="Custody store URL (vault and ledger).")]
UserId = Annotated[str, typer.Option("--user", help="The user whose data this is.")]
Keys = Annotated[Path, typer.Option("--keys", help="Custodian key file (KEKs, pseudonym keys).")]
As = Annotated[Acting, typer.Option("--as", help="Act as the user themself or as a custodian.")]
Grant = Annotated[
    str | None, typer.Option("--grant", help="Just-in-time grant id (custodians need one).")
]


@contextlib.contextmanager
def _open_boundary(store: str, keyfile: Path, *, domestic: str) -> Iterator[Vault]:
    """The vault behind the real policy point and ledger of ``store`` (see ``Custody.open``)."""
    # Imported here so `trustfeed --help` needs neither Cedar nor the ledger.
    from trustfeed.custody._boundary import Custody
    from trustfeed.custody._keyfile import load_keyfile

    with Custody.open(store, keys=load_keyfile(keyfile), domestic=domestic) as custody:
        yield custody.vault


def _run(action: Callable[[], T]) -> T:
    """Any expected failure becomes one line on stderr and exit status 1."""
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


def _principal(acting: Acting, user: str, by: str | None, domestic: str) -> Principal:
    if acting is Acting.USER:
        return Principal(by or user, Role.USER, domestic)
    if not by:
        raise ValueError("--as custodian needs --by naming the custodian")
    return Principal(by, Role.CUSTODIAN, domestic)


def _domestic() -> str:
    from trustfeed.settings import load_settings

    return load_settings().domestic


@user_app.command("export")
def export_command(
    store: Store,
    user: UserId,
    keys: Keys,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the bundle here (mode 0600), not stdout.")
    ] = None,
    acting: As = Acting.USER,
    by: Annotated[str | None, typer.Option("--by", help="Who asks (default: the user).")] = None,
    justification: Annotated[str, typer.Option(help="Why (recorded in the ledger).")] = "",
    grant: Grant = None,
) -> None:
    """Everything held about a user, as one machine-readable JSON bundle."""

    def export() -> dict[str, Any]:
        domestic = _domestic()
        request = user_request(
            _principal(acting, user, by, domestic),
            Action.EXPORT,
            owner=user,
            residency=domestic,
            purpose=PURPOSE_SUBJECT_ACCESS,
            justification=justification,
            grant_id=grant,
        )
        with _open_boundary(store, keys, domestic=domestic) as vault:
            return vault.export(request)

    text = json.dumps(_run(export), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    _run(lambda: _write_private(out, text))
    typer.echo(f"wrote {out}", err=True)


@user_app.command("erase")
def erase_command(
    store: Store,
    user: UserId,
    keys: Keys,
    by: Annotated[str, typer.Option("--by", help="Who asks (the user, or a custodian).")],
    justification: Annotated[str, typer.Option(help="Why (recorded in the ledger).")],
    acting: As = Acting.USER,
    grant: Grant = None,
) -> None:
    """Erase a user: destroy their data key and records; the ledger records it."""

    def erase() -> str:
        domestic = _domestic()
        request = user_request(
            _principal(acting, user, by, domestic),
            Action.ERASE,
            owner=user,
            residency=domestic,
            purpose=PURPOSE_ERASURE,
            justification=justification,
            grant_id=grant,
        )
        with _open_boundary(store, keys, domestic=domestic) as vault:
            receipt = vault.erase(request)
        classes = ", ".join(receipt.data_classes) or "none"
        return (
            f"erased {user}: {receipt.records} records ({classes}); "
            f"ledger entry {receipt.ledger_index}"
        )

    typer.echo(_run(erase))


def _write_private(path: Path, text: str) -> None:
    # The bundle is personal data: 0600 from the first byte, never over another file.
    try:
        write_private(path, text.encode())
    except FileExistsError as exc:
        raise ValueError(f"{path} already exists; refusing to overwrite it") from exc

"""``trustfeed custody init | checkpoint | rotate-kek``: the custodian's own chores.

They join the grant and policy commands on the same ``custody`` group. Paths
and the store default to the settings (``TRUSTFEED_STORE_URL``,
``TRUSTFEED_KEYFILE``, ``TRUSTFEED_LEDGER_KEY``); bad input is one line on
stderr and exit status 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from trustfeed.custody._private_file import write_private
from trustfeed.custody.policy._cli import custody_app
from trustfeed.errors import TrustfeedError
from trustfeed.settings import Settings, load_settings
from trustfeed.storage import redact_url

StoreOption = Annotated[
    str | None, typer.Option("--store", help="Custody store URL (default: TRUSTFEED_STORE_URL).")
]
KeysOption = Annotated[
    Path | None, typer.Option("--keys", help="Custodian key file (default: TRUSTFEED_KEYFILE).")
]
LedgerKeyOption = Annotated[
    Path | None,
    typer.Option("--ledger-key", help="Checkpoint signing key (default: TRUSTFEED_LEDGER_KEY)."),
]


def _run(action: Callable[[Settings], Any]) -> Any:
    try:
        return action(load_settings())
    except (TrustfeedError, ValueError) as exc:
        message = str(exc)
    except OSError as exc:
        message = f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
    except sa.exc.SQLAlchemyError as exc:  # e.g. a locked or unreachable store mid-command
        message = f"storage failure: {getattr(exc, 'orig', None) or exc}"
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _write_secret(path: Path, text: str) -> None:
    """Mode 0600 from the first byte; never over an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_private(path, text.encode())
    except FileExistsError as exc:
        raise ValueError(f"{path} already exists; refusing to overwrite a key") from exc


@custody_app.command("init")
def init_command(
    store: StoreOption = None, keys: KeysOption = None, ledger_key: LedgerKeyOption = None
) -> None:
    """Create the custodian key file, the ledger's signing key and the ledger itself.

    Prints the ledger's public (verifier) key: give it to auditors.
    """

    def init(settings: Settings) -> str:
        from trustfeed.custody._keyfile import generate_keyfile
        from trustfeed.custody.ledger import Ledger, generate_signing_key

        keyfile = keys or settings.custody_keyfile
        signer_path = ledger_key or settings.ledger_key_file
        public_path = signer_path.with_suffix(".pub")
        for path in (keyfile, signer_path, public_path):
            if path.exists():
                raise ValueError(f"{path} already exists; refusing to overwrite a key")
        signer, verifier = generate_signing_key(settings.ledger_origin)
        url = store or settings.custody_store_url
        if url == settings.custody_store_url and settings.store_url is None:
            settings.home.mkdir(parents=True, exist_ok=True)  # the default SQLite file's folder
        # The store first: a bad URL or origin must fail before any key is written,
        # or the retry would refuse to overwrite the half-made keys.
        with Ledger.open(url, signing_key=signer, origin=settings.ledger_origin) as ledger:
            if ledger.latest_checkpoint() is not None:
                raise ValueError(
                    f"{redact_url(url)} already holds a signed ledger; a new signing key would "
                    "make its auditors reject every later checkpoint (use the existing keys)"
                )
            keyfile.parent.mkdir(parents=True, exist_ok=True)
            generate_keyfile(keyfile)
            _write_secret(signer_path, signer + "\n")
            public_path.write_text(verifier + "\n", encoding="utf-8")
            ledger.checkpoint()
        return (
            f"custodian keys: {keyfile}\nledger signing key: {signer_path}\n"
            f"ledger public key (for auditors): {public_path}\n{verifier}"
        )

    typer.echo(_run(init))


@custody_app.command("checkpoint")
def checkpoint_command(store: StoreOption = None, ledger_key: LedgerKeyOption = None) -> None:
    """Sign the ledger's current size and root; prints the checkpoint note."""

    def sign(settings: Settings) -> str:
        from trustfeed.custody.ledger import Ledger

        signer = (ledger_key or settings.ledger_key_file).read_text(encoding="utf-8").strip()
        url = store or settings.custody_store_url
        with Ledger.open(url, signing_key=signer, create=False) as ledger:
            return ledger.checkpoint()

    typer.echo(_run(sign), nl=False)


@custody_app.command("rotate-kek")
def rotate_kek_command(store: StoreOption = None, keys: KeysOption = None) -> None:
    """Add a fresh key-encryption key and rewrap every user's data key under it."""

    def rotate(settings: Settings) -> str:
        from trustfeed.custody._boundary import Custody
        from trustfeed.custody._keyfile import add_kek, load_keyfile
        from trustfeed.custody.ledger import Ledger

        keyfile = keys or settings.custody_keyfile
        url = store or settings.custody_store_url
        # Check the store is there before touching the key file: a mistyped URL
        # must not create an empty store and report a "successful" rotation.
        load_keyfile(keyfile)
        Ledger.open(url, create=False).close()
        new_id = add_kek(keyfile)
        with Custody.open(url, keys=load_keyfile(keyfile), domestic=settings.domestic) as custody:
            rewrapped = custody.vault.rotate_kek(new_id)
        return f"current KEK is now {new_id}; rewrapped {rewrapped} data keys"

    typer.echo(_run(rotate))

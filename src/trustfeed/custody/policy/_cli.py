"""``trustfeed custody``: grants and policy versions from the command line.

Principals are written ``ROLE:ID`` (``custodian:alice``, ``operator:feed-svc``)
so the grant rules (custodians approve, never the grantee) can be checked.
Every bad input ends in one line on stderr and exit status 1; no tracebacks.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from trustfeed.custody._access import Action, DataClass, Principal, Role
from trustfeed.custody._records import EntrySink
from trustfeed.custody.policy._compiled import base_policies
from trustfeed.custody.policy._grants import Grant, GrantStore
from trustfeed.custody.policy._versions import PolicyStore
from trustfeed.errors import TrustfeedError
from trustfeed.storage import open_engine

custody_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Custody: keys and checkpoints, just-in-time grants, policy versions.",
)
policy_app = typer.Typer(no_args_is_help=True, help="Show or activate the policy set.")
custody_app.add_typer(policy_app, name="policy")

#: Jurisdiction given to principals named on the command line (the CLI runs at the custodian).
CLI_JURISDICTION = "domestic"

Store = Annotated[
    str, typer.Option("--store", help="Custody store URL (grants, versions, ledger).")
]


def open_sink(url: str) -> EntrySink:
    """The audit ledger at ``url``: the one place the CLI constructs its sink."""
    try:
        ledger = importlib.import_module("trustfeed.custody.ledger").Ledger
    except (ImportError, AttributeError) as exc:
        raise TrustfeedError(
            "the audit ledger (trustfeed.custody.ledger) is not available"
        ) from exc
    sink: EntrySink = ledger.open(url)
    return sink


@contextlib.contextmanager
def _opened(url: str) -> Iterator[tuple[sa.Engine, EntrySink]]:
    engine = open_engine(url)
    sink: EntrySink | None = None
    try:
        sink = open_sink(url)
        yield engine, sink
    finally:
        close = getattr(sink, "close", None)
        if callable(close):
            close()
        engine.dispose()


def _run(action: Callable[[], Any]) -> Any:
    """Turn any trustfeed error or bad value into one line and exit status 1."""
    try:
        return action()
    except (TrustfeedError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def parse_principal(text: str) -> Principal:
    """``ROLE:ID`` → Principal; ValueError names the roles."""
    role, sep, ident = text.partition(":")
    roles = ", ".join(r.value for r in Role)
    if not sep or not ident.strip():
        raise ValueError(f"principal {text!r} must be ROLE:ID (roles: {roles})")
    try:
        return Principal(ident.strip(), Role(role.strip().lower()), CLI_JURISDICTION)
    except ValueError:
        raise ValueError(f"unknown role {role!r} in {text!r} (roles: {roles})") from None


def _parse_list(text: str, kind: type[Action] | type[DataClass], label: str) -> list[Any]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = ", ".join(m.value for m in kind)
    out = []
    for name in names:
        try:
            out.append(kind(name))
        except ValueError:
            raise ValueError(f"unknown {label} {name!r} (known: {known})") from None
    if not out:
        raise ValueError(f"give at least one {label} (known: {known})")
    return out


def _describe(grant: Grant, now: float) -> str:
    approvals = ",".join(grant.approvals) or "-"
    return (
        f"{grant.id}  {grant.status(now).value:<8} {grant.grantee_role.value}:{grant.grantee_id}  "
        f"actions={','.join(sorted(grant.actions))}  "
        f"data={','.join(sorted(grant.data_classes))}  purpose={grant.purpose}  "
        f"transfer={'yes' if grant.allow_transfer else 'no'}  approvals={approvals}  "
        f"expires={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(grant.expires_at))}"
    )


@custody_app.command("grant")
def grant_command(
    store: Store,
    grantee: Annotated[str, typer.Option(help="ROLE:ID of who may use the grant.")],
    actions: Annotated[str, typer.Option(help="Comma-separated actions, e.g. read,export.")],
    data_classes: Annotated[str, typer.Option(help="Comma-separated data classes.")],
    purpose: Annotated[str, typer.Option(help="The one purpose the grant serves.")],
    expires_in: Annotated[float, typer.Option(help="Seconds until the grant expires.")],
    requested_by: Annotated[str, typer.Option(help="ROLE:ID of who asks.")],
    owner: Annotated[str | None, typer.Option(help="Limit to one user's data.")] = None,
    allow_transfer: Annotated[bool, typer.Option(help="Allow cross-border transfer.")] = False,
    justification: Annotated[str, typer.Option(help="Why it is needed.")] = "",
) -> None:
    """Request a grant; prints its id. Two custodians other than the requester approve it."""

    def request() -> Grant:
        grantee_p, requester = parse_principal(grantee), parse_principal(requested_by)
        acts = _parse_list(actions, Action, "action")
        classes = _parse_list(data_classes, DataClass, "data class")
        with _opened(store) as (engine, sink):
            return GrantStore(engine=engine, sink=sink).request(
                grantee=grantee_p,
                actions=acts,
                data_classes=classes,
                purpose=purpose,
                expires_in=expires_in,
                requested_by=requester,
                owner=owner,
                allow_transfer=allow_transfer,
                justification=justification,
            )

    typer.echo(_run(request).id)


@custody_app.command("approve")
def approve_command(
    store: Store,
    grant: Annotated[str, typer.Option("--grant", help="Grant id.")],
    approver: Annotated[str, typer.Option(help="ROLE:ID of the approving custodian.")],
) -> None:
    """Approve a grant (two distinct custodians, neither the grantee)."""

    def approve() -> str:
        who = parse_principal(approver)
        with _opened(store) as (engine, sink):
            grants = GrantStore(engine=engine, sink=sink)
            return _describe(grants.approve(grant, who), grants.now())

    typer.echo(_run(approve))


@custody_app.command("revoke")
def revoke_command(
    store: Store,
    grant: Annotated[str, typer.Option("--grant", help="Grant id.")],
    by: Annotated[str, typer.Option("--by", help="ROLE:ID of who revokes.")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Revoke a grant now."""

    def revoke() -> str:
        who = parse_principal(by)
        with _opened(store) as (engine, sink):
            grants = GrantStore(engine=engine, sink=sink)
            return _describe(grants.revoke(grant, who, reason=reason), grants.now())

    typer.echo(_run(revoke))


@custody_app.command("grants")
def grants_command(store: Store) -> None:
    """List every grant with its status."""

    def listing() -> list[str]:
        with _opened(store) as (engine, sink):
            grants = GrantStore(engine=engine, sink=sink)
            now = grants.now()
            return [_describe(g, now) for g in grants.all()]

    lines = _run(listing)
    typer.echo("\n".join(lines) if lines else "no grants")


@policy_app.command("show")
def show_command(store: Store) -> None:
    """Print the active policy version (hash, actor, text)."""

    def show() -> str:
        with _opened(store) as (engine, sink):
            active = PolicyStore(engine=engine, sink=sink).active()
        if active is None:
            return "# no version activated yet; the shipped base policies apply\n" + base_policies()
        header = f"# version {active.seq} sha256:{active.hash} by {active.actor_id}"
        return f"{header}\n{active.text}"

    typer.echo(_run(show))


@policy_app.command("activate")
def activate_command(
    file: Annotated[Path, typer.Argument(help="Cedar policy file.")],
    store: Store,
    actor: Annotated[str, typer.Option(help="ROLE:ID of the activating custodian.")],
) -> None:
    """Validate FILE against the schema and make it the active policy set."""

    def activate() -> str:
        who = parse_principal(actor)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {file}: {exc.strerror}") from None
        with _opened(store) as (engine, sink):
            version, _ = PolicyStore(engine=engine, sink=sink).activate(text, who)
        return f"activated version {version.seq} sha256:{version.hash}"

    typer.echo(_run(activate))

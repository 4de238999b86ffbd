"""Just-in-time grants: two custodians (not the requester) approve, a purpose, a scope, an expiry.

A grant lets one principal do named actions on named data classes for one
purpose until it expires or is revoked. It counts only when a request names
its id and has the same purpose; the policy point then tells Cedar
``context.grant.active`` (and ``transfer`` when cross-border transfer is
allowed), so every forbid, the licensor's included, still applies.

Grants live in SQL; every lifecycle event (request, approve, revoke) is also
a ledger record. The record is appended *before* the row is committed, so the
ledger never misses an event that took effect; if the commit then fails, a
``grant_aborted`` record says so.
"""

from __future__ import annotations

import enum
import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa

from trustfeed.custody._access import AccessRequest, Action, DataClass, Principal, Role
from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.custody.policy import _tables as t
from trustfeed.custody.policy._errors import GrantError

_E = TypeVar("_E", Action, DataClass)

#: Approvals a grant needs, from distinct custodians other than the grantee.
REQUIRED_APPROVALS = 2
#: Just-in-time means short: the longest a grant may run.
MAX_GRANT_SECONDS = 30 * 24 * 3600.0


class GrantStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Grant:
    """One grant as stored; ``status`` and ``covers`` take the time explicitly."""

    id: str
    grantee_id: str
    grantee_role: Role
    actions: frozenset[Action]
    data_classes: frozenset[DataClass]
    purpose: str
    owner: str | None
    allow_transfer: bool
    justification: str
    requested_by: str
    created_at: float
    expires_at: float
    approvals: tuple[str, ...] = ()
    revoked_at: float | None = None
    revoked_by: str | None = None

    def status(self, now: float) -> GrantStatus:
        if self.revoked_at is not None:
            return GrantStatus.REVOKED
        if now >= self.expires_at:
            return GrantStatus.EXPIRED
        if len(self.approvals) >= REQUIRED_APPROVALS:
            return GrantStatus.ACTIVE
        return GrantStatus.PENDING

    def covers(self, request: AccessRequest, now: float) -> bool:
        """Whether this grant, active at ``now``, is named by and scopes ``request``."""
        resource = request.resource
        return (
            request.grant_id == self.id
            and self.status(now) is GrantStatus.ACTIVE
            and request.principal.id == self.grantee_id
            and request.principal.role is self.grantee_role
            and request.action in self.actions
            and resource.data_class in self.data_classes
            and request.purpose == self.purpose
            and (self.owner is None or resource.owner == self.owner)
        )


class GrantStore:
    """Grants in SQL, lifecycle events in the ledger.

    ``on_change`` is called after every committed change (the policy point
    drops its decision cache there).
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        sink: EntrySink,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._sink = sink
        self._clock = clock
        self._on_change = on_change
        t.create_tables(engine)

    def request(
        self,
        *,
        grantee: Principal,
        actions: Iterable[Action],
        data_classes: Iterable[DataClass],
        purpose: str,
        expires_in: float,
        requested_by: Principal,
        owner: str | None = None,
        allow_transfer: bool = False,
        justification: str = "",
    ) -> Grant:
        """Record a pending grant; it does nothing until two custodians approve it."""
        now = self._clock()
        grant = Grant(
            id="g-" + secrets.token_hex(8),
            grantee_id=grantee.id,
            grantee_role=grantee.role,
            actions=_members(Action, actions, "action"),
            data_classes=_members(DataClass, data_classes, "data class"),
            purpose=purpose.strip(),
            owner=owner or None,
            allow_transfer=allow_transfer,
            justification=justification,
            requested_by=requested_by.id,
            created_at=now,
            expires_at=now + expires_in,
        )
        _check_scope(grant, expires_in)
        record = _request_record(grant, requested_by)
        self._write(record, grant.id, lambda conn: conn.execute(t.grants.insert(), _row(grant)))
        return grant

    def approve(self, grant_id: str, approver: Principal) -> Grant:
        """Add one custodian's approval.

        1. The grant exists and is neither revoked nor expired.
        2. The approver is a custodian and is not the grantee.
        3. The approver has not approved it already, and it is not already fully approved.
        4. The approval is appended to the ledger, then committed (the primary
           key refuses a concurrent duplicate).
        """
        grant = self.get(grant_id)
        now = self._clock()
        _check_approval(grant, approver, now)
        record = encode_record(
            "grant_approve",
            grant=grant.id,
            approver=approver.id,
            approver_role=approver.role.value,
            approvals=len(grant.approvals) + 1,
            at=now,
        )
        row = {"grant_id": grant.id, "approver_id": approver.id, "approved_at": now}
        self._write(record, grant.id, lambda conn: conn.execute(t.grant_approvals.insert(), row))
        return self.get(grant_id)

    def revoke(self, grant_id: str, by: Principal, *, reason: str = "") -> Grant:
        """Stop a grant now; only a custodian or the original requester may."""
        grant = self.get(grant_id)
        if by.role is not Role.CUSTODIAN and by.id != grant.requested_by:
            raise GrantError(f"only a custodian or the requester may revoke {grant_id}")
        if grant.revoked_at is not None:
            raise GrantError(f"grant {grant_id} is already revoked")
        now = self._clock()
        record = encode_record(
            "grant_revoke", grant=grant.id, by=by.id, by_role=by.role.value, reason=reason, at=now
        )
        update = (
            t.grants.update()
            .where(t.grants.c.id == grant.id, t.grants.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by.id)
        )
        self._write(record, grant.id, lambda conn: conn.execute(update))
        return self.get(grant_id)

    def get(self, grant_id: str) -> Grant:
        """The grant, or GrantError naming the unknown id."""
        found = self.get_many([grant_id])
        if grant_id not in found:
            raise GrantError(f"unknown grant {grant_id!r}")
        return found[grant_id]

    def get_many(self, grant_ids: Iterable[str]) -> dict[str, Grant]:
        """The grants among ``grant_ids`` that exist (one round trip for a batch)."""
        ids = sorted(set(grant_ids))
        if not ids:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.grants).where(t.grants.c.id.in_(ids))).all()
            approvals = conn.execute(
                sa.select(t.grant_approvals)
                .where(t.grant_approvals.c.grant_id.in_(ids))
                .order_by(t.grant_approvals.c.approved_at, t.grant_approvals.c.approver_id)
            ).all()
        return _assemble(rows, approvals)

    def all(self) -> list[Grant]:
        """Every grant, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.grants).order_by(t.grants.c.created_at)).all()
            approvals = conn.execute(
                sa.select(t.grant_approvals).order_by(t.grant_approvals.c.approved_at)
            ).all()
        found = _assemble(rows, approvals)
        return sorted(found.values(), key=lambda g: (g.created_at, g.id))

    def now(self) -> float:
        return self._clock()

    def _write(
        self, record: bytes, grant_id: str, change: Callable[[sa.Connection], object]
    ) -> None:
        # Ledger first, then commit: the audit trail never misses an effective event.
        index = self._sink.append(record)
        try:
            with self._engine.begin() as conn:
                change(conn)
        except sa.exc.IntegrityError as exc:
            self._sink.append(encode_record("grant_aborted", grant=grant_id, entry=index))
            raise GrantError(f"grant {grant_id}: conflicting concurrent change") from exc
        except Exception:
            self._sink.append(encode_record("grant_aborted", grant=grant_id, entry=index))
            raise
        if self._on_change is not None:
            self._on_change()


def _members(kind: type[_E], values: Iterable[str], label: str) -> frozenset[_E]:
    names = list(values)
    try:
        return frozenset(kind(v) for v in names)
    except ValueError:
        known = ", ".join(str(m) for m in kind)
        raise GrantError(f"unknown {label} in {sorted(names)} (known: {known})") from None


def _check_scope(grant: Grant, expires_in: float) -> None:
    if not grant.actions:
        raise GrantError("a grant needs at least one action")
    if not grant.data_classes:
        raise GrantError("a grant needs at least one data class")
    if not grant.purpose:
        raise GrantError("a grant needs a purpose")
    if not grant.grantee_id:
        raise GrantError("a grant needs a grantee")
    if not 0 < expires_in <= MAX_GRANT_SECONDS:
        raise GrantError(f"expires_in must be in (0, {MAX_GRANT_SECONDS:.0f}] seconds")


def _check_approval(grant: Grant, approver: Principal, now: float) -> None:
    status = grant.status(now)
    if status in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
        raise GrantError(f"grant {grant.id} is {status.value}; it cannot be approved")
    if approver.role is not Role.CUSTODIAN:
        raise GrantError(f"{approver.id} is a {approver.role.value}; only custodians approve")
    if approver.id == grant.grantee_id:
        raise GrantError(f"{approver.id} cannot approve a grant to themselves")
    if approver.id == grant.requested_by:
        # Four eyes: the two approvals come from custodians other than the requester.
        raise GrantError(f"{approver.id} requested {grant.id}; two other custodians approve it")
    if approver.id in grant.approvals:
        raise GrantError(f"{approver.id} has already approved {grant.id}; a second custodian must")
    if len(grant.approvals) >= REQUIRED_APPROVALS:
        raise GrantError(f"grant {grant.id} is already approved")


def _request_record(grant: Grant, requested_by: Principal) -> bytes:
    # The owner is a user id: the ledger says only that the grant is scoped to one.
    return encode_record(
        "grant_request",
        grant=grant.id,
        grantee=grant.grantee_id,
        grantee_role=grant.grantee_role.value,
        actions=sorted(a.value for a in grant.actions),
        data_classes=sorted(d.value for d in grant.data_classes),
        purpose=grant.purpose,
        owner_scoped=grant.owner is not None,
        allow_transfer=grant.allow_transfer,
        justification=grant.justification,
        requested_by=requested_by.id,
        requested_by_role=requested_by.role.value,
        expires_at=grant.expires_at,
        at=grant.created_at,
    )


def _row(grant: Grant) -> dict[str, object]:
    return {
        "id": grant.id,
        "grantee_id": grant.grantee_id,
        "grantee_role": grant.grantee_role.value,
        "actions": json.dumps(sorted(a.value for a in grant.actions)),
        "data_classes": json.dumps(sorted(d.value for d in grant.data_classes)),
        "purpose": grant.purpose,
        "owner": grant.owner,
        "allow_transfer": grant.allow_transfer,
        "justification": grant.justification,
        "requested_by": grant.requested_by,
        "created_at": grant.created_at,
        "expires_at": grant.expires_at,
    }


def _assemble(rows: Sequence[sa.Row], approvals: Sequence[sa.Row]) -> dict[str, Grant]:
    by_grant: dict[str, list[str]] = {}
    for approval in approvals:
        by_grant.setdefault(approval.grant_id, []).append(approval.approver_id)
    return {row.id: _grant(row, tuple(by_grant.get(row.id, ()))) for row in rows}


def _grant(row: sa.Row, approvals: tuple[str, ...]) -> Grant:
    return Grant(
        id=row.id,
        grantee_id=row.grantee_id,
        grantee_role=Role(row.grantee_role),
        actions=frozenset(Action(a) for a in json.loads(row.actions)),
        data_classes=frozenset(DataClass(d) for d in json.loads(row.data_classes)),
        purpose=row.purpose,
        owner=row.owner,
        allow_transfer=bool(row.allow_transfer),
        justification=row.justification,
        requested_by=row.requested_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        approvals=approvals,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )

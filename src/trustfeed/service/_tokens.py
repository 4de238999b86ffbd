"""API tokens issued by the custodian: each bound to one principal, role and jurisdiction.

A token reads ``tf_<id>_<secret>``. Only the SHA-256 of the secret is stored
(the secret is 256 random bits, so a slow password hash adds nothing) and it
is shown once, at issue. Authentication compares in constant time and caches
valid tokens briefly; revocation in this process takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from trustfeed.custody import Principal, Role
from trustfeed.service import _tables as t
from trustfeed.service._errors import NotFound, ServiceError, Unauthenticated

_TOKEN = re.compile(r"^tf_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$")
_PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")
_JURISDICTION = re.compile(r"^[A-Z]{2}$")
CACHE_SECONDS = 5.0  # how long another process's revocation may take to reach this one


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed (never its secret)."""

    id: str
    principal: Principal
    label: str
    issued_by: str
    issued_at: float
    expires_at: float | None
    revoked_at: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "principal": self.principal.id,
            "role": self.principal.role.value,
            "jurisdiction": self.principal.jurisdiction,
            "label": self.label,
            "issued_by": self.issued_by,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


class TokenStore:
    """Issue, authenticate, list and revoke API tokens."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._cache: dict[str, tuple[float, TokenInfo]] = {}
        self._lock = threading.Lock()
        t.metadata.create_all(engine, tables=[t.tokens])

    def issue(
        self,
        principal: Principal,
        *,
        label: str,
        issued_by: str,
        expires_in: float | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token for ``principal``; returns (the secret token text, its listing)."""
        _check_principal(principal)
        if not label.strip() or len(label) > 200:
            raise ServiceError("a token needs a label of 1 to 200 characters")
        if expires_in is not None and expires_in <= 0:
            raise ServiceError("expires_in must be positive seconds")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = self._clock()
        info = TokenInfo(
            token_id, principal, label.strip(), issued_by, now,
            None if expires_in is None else now + expires_in, None,
        )  # fmt: skip
        with self._engine.begin() as conn:
            conn.execute(t.tokens.insert(), _row(info, _digest(secret)))
        return f"tf_{token_id}_{secret}", info

    def authenticate(self, token: str | None) -> Principal:
        """The principal a presented token stands for, or :class:`Unauthenticated`."""
        match = _TOKEN.match(token or "")
        if match is None:
            raise Unauthenticated("missing or malformed API token")
        token_id, secret = match.groups()
        now = self._clock()
        cached = self._cache.get(token)  # type: ignore[arg-type]
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            info = cached[1]
        else:
            info = self._load(token_id, _digest(secret))
            with self._lock:
                self._cache[token] = (now, info)  # type: ignore[index]
        if info.revoked_at is not None or (info.expires_at is not None and info.expires_at <= now):
            raise Unauthenticated("API token revoked or expired")
        return info.principal

    def _load(self, token_id: str, digest: str) -> TokenInfo:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.tokens).where(t.tokens.c.id == token_id)).first()
        if row is None or not hmac.compare_digest(row.secret_sha256, digest):
            raise Unauthenticated("unknown API token")
        return _info(row)

    def list(self) -> list[TokenInfo]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.tokens).order_by(t.tokens.c.issued_at)).all()
        return [_info(r) for r in rows]

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke one token (idempotent); it stops working in this process at once."""
        with self._engine.begin() as conn:
            done = conn.execute(
                t.tokens.update()
                .where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            row = conn.execute(sa.select(t.tokens).where(t.tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"no token {token_id!r}")
        if done.rowcount:
            self._forget(token_id)
        return _info(row)

    def revoke_principal(self, principal_id: str, role: Role) -> int:
        """Revoke every token of one principal (a user's, on erasure)."""
        with self._engine.begin() as conn:
            done = conn.execute(
                t.tokens.update()
                .where(
                    t.tokens.c.principal == principal_id,
                    t.tokens.c.role == role.value,
                    t.tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=self._clock())
            )
        with self._lock:
            self._cache = {
                k: v for k, v in self._cache.items() if v[1].principal.id != principal_id
            }
        return int(done.rowcount)

    def _forget(self, token_id: str) -> None:
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[1].id != token_id}


def _check_principal(principal: Principal) -> None:
    if not _PRINCIPAL.match(principal.id):
        raise ServiceError(
            "a principal id is 1 to 128 letters, digits or . _ @ : -, "
            "starting with a letter or digit"
        )
    if not _JURISDICTION.match(principal.jurisdiction):
        raise ServiceError("jurisdiction must be an ISO 3166-1 alpha-2 code, e.g. US")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _row(info: TokenInfo, digest: str) -> dict[str, object]:
    return {
        "id": info.id,
        "secret_sha256": digest,
        "principal": info.principal.id,
        "role": info.principal.role.value,
        "jurisdiction": info.principal.jurisdiction,
        "label": info.label,
        "issued_by": info.issued_by,
        "issued_at": info.issued_at,
        "expires_at": info.expires_at,
        "revoked_at": info.revoked_at,
    }


def _info(row: sa.Row) -> TokenInfo:
    principal = Principal(row.principal, Role(row.role), row.jurisdiction)
    return TokenInfo(
        row.id, principal, row.label, row.issued_by, row.issued_at, row.expires_at, row.revoked_at
    )

"""Policy versions: which policy text is in force, who put it there, and when.

Each activation is a SQL row and a ``policy_version`` ledger record carrying the
full text, so an auditor can recompute the hash that every decision record names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from trustfeed.custody._access import Principal, Role
from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.custody.policy import _tables as t
from trustfeed.custody.policy._compiled import CompiledPolicies, compile_policies
from trustfeed.custody.policy._errors import PolicyError

#: Actor recorded when a deployment installs policies at start-up (no request involved).
BOOTSTRAP_ACTOR = "bootstrap"


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    seq: int
    hash: str
    text: str
    actor_id: str
    actor_role: str
    activated_at: float
    ledger_index: int


class PolicyStore:
    """Stored policy versions; the highest ``seq`` is the active one."""

    def __init__(
        self, *, engine: sa.Engine, sink: EntrySink, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._sink = sink
        self._clock = clock
        t.create_tables(engine)

    def active(self) -> PolicyVersion | None:
        """The version in force, or None before the first activation."""
        query = sa.select(t.policy_versions).order_by(t.policy_versions.c.seq.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _version(row)

    def history(self) -> list[PolicyVersion]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.policy_versions).order_by(t.policy_versions.c.seq))
            return [_version(row) for row in rows]

    def activate(self, text: str, actor: Principal) -> tuple[PolicyVersion, CompiledPolicies]:
        """Validate and store ``text`` as the active version (custodians only).

        1. The actor is a custodian.
        2. The text parses, validates against the schema and names every policy.
        3. A ``policy_version`` record (text, hash, actor, time) is appended to the ledger.
        4. The version row is committed; the caller swaps it in.
        """
        if actor.role is not Role.CUSTODIAN:
            raise PolicyError(
                f"{actor.id} is a {actor.role.value}; only custodians activate policies"
            )
        compiled = compile_policies(text)
        return self._store(compiled, actor.id, actor.role.value), compiled

    def bootstrap(self, text: str) -> tuple[PolicyVersion, CompiledPolicies]:
        """Install ``text`` at start-up unless it is already the active version."""
        compiled = compile_policies(text)
        current = self.active()
        if current is not None and current.hash == compiled.hash:
            return current, compiled
        return self._store(compiled, BOOTSTRAP_ACTOR, "system"), compiled

    def _store(self, compiled: CompiledPolicies, actor_id: str, actor_role: str) -> PolicyVersion:
        now = self._clock()
        index = self._sink.append(
            encode_record(
                "policy_version",
                hash=compiled.hash,
                text=compiled.text,
                policies=compiled.size,
                actor=actor_id,
                actor_role=actor_role,
                at=now,
            )
        )
        row = {
            "hash": compiled.hash,
            "text": compiled.text,
            "actor_id": actor_id,
            "actor_role": actor_role,
            "activated_at": now,
            "ledger_index": index,
        }
        with self._engine.begin() as conn:
            key = conn.execute(t.policy_versions.insert().values(**row)).inserted_primary_key
        return PolicyVersion(
            seq=int(key[0]) if key else 0,
            hash=compiled.hash,
            text=compiled.text,
            actor_id=actor_id,
            actor_role=actor_role,
            activated_at=now,
            ledger_index=index,
        )


def _version(row: sa.Row) -> PolicyVersion:
    return PolicyVersion(
        seq=row.seq,
        hash=row.hash,
        text=row.text,
        actor_id=row.actor_id,
        actor_role=row.actor_role,
        activated_at=row.activated_at,
        ledger_index=row.ledger_index,
    )

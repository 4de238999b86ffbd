"""DSA statements of reasons: one for every restriction the gate records.

Why follow the gate's history rather than hook each decider: restrictions
come from banks, rules, strikes, fail-closed screening and moderators; the
transition history is the one place they all pass, so following it (like the
eligibility feed does) leaves none out. Each new transition into a
restricted status becomes one statement in the DSA Transparency Database's
own field names and values:

===================  =====================================================
gate status          ``decision_visibility``
===================  =====================================================
removed              DECISION_VISIBILITY_CONTENT_REMOVED
quarantined          DECISION_VISIBILITY_CONTENT_DISABLED (hidden pending review)
not_recommendable    DECISION_VISIBILITY_CONTENT_DEMOTED
age_restricted       DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED
===================  =====================================================

The policy, and through it ``category`` and ``decision_ground``, is the one
the moderator cited (review decisions), or the one mapped to the automated
actor (``automated_policies``). ``automated_decision`` is FULLY for rules and
the system, NOT_AUTOMATED for moderators; ``automated_detection`` is Yes when
a rule or the system made or queued the decision. Every statement is checked
against the shipped JSON Schema, stored, and appended to the ledger before
its commit, together with the cursor that says how far the history was read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import IO, Any

import jsonschema
import sqlalchemy as sa

from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.moderation import _workflow_tables as w
from trustfeed.moderation._gate import Clock, Gate, Transition
from trustfeed.moderation._status import Actor, Status
from trustfeed.moderation._taxonomy import Policy, Taxonomy
from trustfeed.moderation._workflow_errors import InvalidStatement

VISIBILITY: dict[Status, str] = {
    Status.REMOVED: "DECISION_VISIBILITY_CONTENT_REMOVED",
    Status.QUARANTINED: "DECISION_VISIBILITY_CONTENT_DISABLED",
    Status.NOT_RECOMMENDABLE: "DECISION_VISIBILITY_CONTENT_DEMOTED",
    Status.AGE_RESTRICTED: "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
}
#: Automated actor id prefixes → the policy their restrictions cite.
DEFAULT_AUTOMATED_POLICIES: Mapping[str, str] = {
    "bank:": "known-bad-media",
    "fail-closed": "screening-unavailable",
    "strikes": "creator-strikes",
}
#: What a restriction with no mapped or cited policy cites (its reason still says why).
FALLBACK_POLICY = "automated-screening"
_CURSOR = "dsa_statements"
_SCHEMA_FILE = "dsa_statement_of_reasons.schema.json"


@cache
def statement_schema() -> dict[str, Any]:
    """The shipped JSON Schema of an exported statement (Draft 2020-12)."""
    text = resources.files("trustfeed.moderation").joinpath("data", _SCHEMA_FILE).read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_statement(statement: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidStatement` unless ``statement`` satisfies the schema."""
    validator = jsonschema.Draft202012Validator(statement_schema())
    errors = sorted(validator.iter_errors(dict(statement)), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(record)"
        raise InvalidStatement(f"statement of reasons invalid at {where}: {errors[0].message}")


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


class StatementsOfReasons:
    """Builds, stores and exports statements of reasons from the gate's history."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        gate: Gate,
        taxonomy: Taxonomy,
        sink: EntrySink,
        clock: Clock = time.time,
        content_type: tuple[str, ...] = ("CONTENT_TYPE_VIDEO",),
        automated_policies: Mapping[str, str] = DEFAULT_AUTOMATED_POLICIES,
        puid_prefix: str = "trustfeed",
    ) -> None:
        for policy_id in (*automated_policies.values(), FALLBACK_POLICY):
            taxonomy.get(policy_id)  # fail at start, not on the first restriction
        self._engine = engine
        self._gate = gate
        self._taxonomy = taxonomy
        self._sink = sink
        self._clock = clock
        self._content_type = list(content_type)
        self._automated = dict(automated_policies)
        self._prefix = puid_prefix
        w.metadata.create_all(engine)

    def sync(self, batch: int = 1000) -> list[dict[str, Any]]:
        """Write a statement for every restriction since the last sync; return the new ones."""
        made: list[dict[str, Any]] = []
        while True:
            cursor = self._cursor()
            moves = self._gate.transitions_since(cursor, limit=batch)
            if not moves:
                return made
            made += self._write(cursor, moves)

    def _write(self, cursor: int, moves: list[Transition]) -> list[dict[str, Any]]:
        """Steps: (1) build and validate each statement; (2) ledger, then rows and cursor."""
        built = [(m, self.build(m)) for m in moves if m.to_status in VISIBILITY]
        for _, body in built:
            validate_statement(body)
        entries = [encode_record("dsa_statement_of_reasons", **body) for _, body in built]
        with self._engine.begin() as conn:
            moved = conn.execute(
                w.cursors.update()
                .where(w.cursors.c.name == _CURSOR, w.cursors.c.value == cursor)
                .values(value=moves[-1].id)
            )
            if moved.rowcount != 1:  # another syncer got here first: read again
                return []
            indices = self._sink.append_many(entries) if entries else []
            rows = [
                {"puid": b["puid"], "transition_id": m.id, "item_id": m.item_id}
                | {"body": json.dumps(b, sort_keys=True), "at": self._clock(), "ledger_index": i}
                for (m, b), i in zip(built, indices, strict=True)
            ]
            if rows:
                conn.execute(w.dsa_statements.insert(), rows)
        return [b for _, b in built]

    def _cursor(self) -> int:
        with self._engine.begin() as conn:
            c = w.cursors.c
            value = conn.execute(sa.select(c.value).where(c.name == _CURSOR)).scalar()
            if value is None:
                conn.execute(w.cursors.insert().values(name=_CURSOR, value=0))
                return 0
            return int(value)

    def build(self, move: Transition) -> dict[str, Any]:
        """The statement of reasons for one restricting transition."""
        actor = Actor.parse(move.actor)
        policy, detected = self._policy_for(move, actor)
        statement: dict[str, Any] = {
            "puid": f"{self._prefix}-sor-{move.id}",
            "decision_visibility": [VISIBILITY[move.to_status]],
            "decision_ground": policy.decision_ground,
            "category": policy.dsa_category,
            "content_type": list(self._content_type),
            "content_date": _day(self._gate.history(move.item_id)[0].at),
            "application_date": _day(move.at),
            "decision_facts": f"{policy.title}. {move.reason}"[:5000],
            "source_type": "SOURCE_VOLUNTARY",
            "automated_detection": "Yes" if detected else "No",
            "automated_decision": "AUTOMATED_DECISION_FULLY"
            if actor.kind in ("rule", "system")
            else "AUTOMATED_DECISION_NOT_AUTOMATED",
        }
        return statement | _grounds(policy)

    def _policy_for(self, move: Transition, actor: Actor) -> tuple[Policy, bool]:
        """The cited policy, and whether automated means detected the content."""
        if actor.kind == "moderator":
            found = self._review_decision(move.id)
            if found is not None:
                policy_id, detected_by = found
                detected = Actor.parse(detected_by).kind in ("rule", "system")
                return self._taxonomy.get(policy_id), detected
            return self._taxonomy.get(FALLBACK_POLICY), False
        for prefix, policy_id in self._automated.items():
            if actor.id.startswith(prefix):
                return self._taxonomy.get(policy_id), True
        return self._taxonomy.get(FALLBACK_POLICY), True

    def _review_decision(self, transition_id: int) -> tuple[str, str] | None:
        d, r, j = w.decision_items.c, w.review_decisions.c, w.review_jobs.c
        query = (
            sa.select(r.policy_id, j.detected_by)
            .join_from(w.decision_items, w.review_decisions, d.decision_id == r.id)
            .join(w.review_jobs, r.job_id == j.id)
            .where(d.transition_id == transition_id)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (row[0], row[1])

    def statements(self) -> list[dict[str, Any]]:
        """Every stored statement, in the order the restrictions happened."""
        s = w.dsa_statements.c
        with self._engine.connect() as conn:
            bodies = conn.execute(sa.select(s.body).order_by(s.transition_id)).scalars()
            return [json.loads(b) for b in bodies]

    def export_jsonl(self, out: IO[str]) -> int:
        """Write every stored statement as one JSON line; return how many."""
        count = 0
        for statement in self.statements():
            out.write(json.dumps(statement, sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
        return count


def _grounds(policy: Policy) -> dict[str, str]:
    """The ground fields the schema requires for the policy's decision ground."""
    if policy.decision_ground == "DECISION_GROUND_ILLEGAL_CONTENT":
        return {
            "illegal_content_legal_ground": policy.legal_ground or "",
            "illegal_content_explanation": policy.description,
        }
    return {
        "incompatible_content_ground": policy.terms_section,
        "incompatible_content_explanation": policy.description,
        "incompatible_content_illegal": "No",
    }

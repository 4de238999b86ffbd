"""Item statuses, who may decide them, and the one transition table.

Why a table rather than ad-hoc checks: the auditor and the moderators' console
read the same rules the code enforces. Rows are "from", columns "to"; a cell
says who may make that move:

=================  ========  ==============  =================  ===========  =======
from \\ to         eligible  age_restricted  not_recommendable  quarantined  removed
=================  ========  ==============  =================  ===========  =======
pending            any       any             any                any          any
eligible           --        any             any                any          any
age_restricted     mod       --              any                any          any
not_recommendable  mod       mod             --                 any          any
quarantined        mod       mod             mod                --           any
removed            mod       mod             mod                mod          --
=================  ========  ==============  =================  ===========  =======

"any" = a rule, the system or a moderator; "mod" = a moderator only. So
machines only ever escalate (towards ``removed``), a person undoes a machine's
or another person's restriction (appeals), and nothing returns to ``pending``:
``pending`` is the state of an upload no decision has touched yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from trustfeed.moderation._errors import IllegalTransition


class Status(StrEnum):
    """Where an item stands; only :attr:`ELIGIBLE` may reach candidate retrieval."""

    PENDING = "pending"
    ELIGIBLE = "eligible"
    AGE_RESTRICTED = "age_restricted"  # stays up, not in feeds until age-gated feeds exist
    NOT_RECOMMENDABLE = "not_recommendable"  # stays up, never in feeds (DSA: demoted)
    QUARANTINED = "quarantined"  # hidden, awaiting review
    REMOVED = "removed"


#: How restrictive each decided status is; machines may only move up this order.
SEVERITY: dict[Status, int] = {
    Status.ELIGIBLE: 0,
    Status.AGE_RESTRICTED: 1,
    Status.NOT_RECOMMENDABLE: 2,
    Status.QUARANTINED: 3,
    Status.REMOVED: 4,
}

ActorKind = Literal["rule", "system", "moderator", "uploader"]
_ACTOR_ID = re.compile(r"^[A-Za-z0-9._:@/-]{1,120}$")


@dataclass(frozen=True)
class Actor:
    """Who made a transition: a rule id (``rule:bank:csam``) or a moderator id."""

    kind: ActorKind
    id: str

    def __post_init__(self) -> None:
        if self.kind not in ("rule", "system", "moderator", "uploader"):
            raise ValueError(f"unknown actor kind {self.kind!r}")
        if not _ACTOR_ID.match(self.id):
            raise ValueError(f"actor id must match {_ACTOR_ID.pattern}, got {self.id!r}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Actor:
        """The inverse of ``str(actor)`` (for rows read back from SQL)."""
        kind, _, ident = text.partition(":")
        return cls(kind, ident)  # type: ignore[arg-type]


_ANY = frozenset({"rule", "system", "moderator"})
_MOD = frozenset({"moderator"})

#: The table in the module docstring, as data: TABLE[from][to] = actor kinds allowed.
TABLE: dict[Status, dict[Status, frozenset[str]]] = {
    Status.PENDING: {s: _ANY for s in SEVERITY},
    Status.ELIGIBLE: {
        Status.AGE_RESTRICTED: _ANY,
        Status.NOT_RECOMMENDABLE: _ANY,
        Status.QUARANTINED: _ANY,
        Status.REMOVED: _ANY,
    },
    Status.AGE_RESTRICTED: {
        Status.ELIGIBLE: _MOD,
        Status.NOT_RECOMMENDABLE: _ANY,
        Status.QUARANTINED: _ANY,
        Status.REMOVED: _ANY,
    },
    Status.NOT_RECOMMENDABLE: {
        Status.ELIGIBLE: _MOD,
        Status.AGE_RESTRICTED: _MOD,
        Status.QUARANTINED: _ANY,
        Status.REMOVED: _ANY,
    },
    Status.QUARANTINED: {
        Status.ELIGIBLE: _MOD,
        Status.AGE_RESTRICTED: _MOD,
        Status.NOT_RECOMMENDABLE: _MOD,
        Status.REMOVED: _ANY,
    },
    Status.REMOVED: {
        Status.ELIGIBLE: _MOD,
        Status.AGE_RESTRICTED: _MOD,
        Status.NOT_RECOMMENDABLE: _MOD,
        Status.QUARANTINED: _MOD,
    },
}


def check_transition(old: Status, new: Status, actor: Actor) -> None:
    """Raise :class:`IllegalTransition` unless ``actor`` may move an item ``old`` → ``new``.

    >>> check_transition(Status.PENDING, Status.ELIGIBLE, Actor("rule", "no-match"))
    >>> check_transition(Status.REMOVED, Status.ELIGIBLE, Actor("rule", "r1"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trustfeed.moderation._errors.IllegalTransition: removed → eligible needs a moderator, not ...
    """
    allowed = TABLE[old].get(new)
    if allowed is None:
        raise IllegalTransition(f"{old} → {new} is not a transition (see the table in _status)")
    if actor.kind not in allowed:
        raise IllegalTransition(f"{old} → {new} needs a moderator, not {actor}")


def more_severe(a: Status, b: Status) -> Status:
    """The more restrictive of two decided statuses (how verdicts of several steps combine)."""
    return a if SEVERITY[a] >= SEVERITY[b] else b

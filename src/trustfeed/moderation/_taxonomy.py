"""The policy taxonomy: the documented list of policies every decision must cite.

Why a shipped data file: moderators, appellants and the DSA Transparency
Database all read the same list the code enforces, and a policy's meaning is
fixed by its id (new meaning, new id). Each policy names the action it usually
leads to and the DSA category and decision ground its statements of reasons
carry. An id that is not in the list is refused (:class:`UnknownPolicy`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from trustfeed.moderation._errors import ModerationError
from trustfeed.moderation._status import Status
from trustfeed.moderation._workflow_errors import UnknownPolicy

#: The DSA Transparency Database ``category`` values (API v1 statement categories).
DSA_CATEGORIES = frozenset(
    {
        "STATEMENT_CATEGORY_ANIMAL_WELFARE",
        "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
        "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
        "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
        "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
        "STATEMENT_CATEGORY_NON_CONSENSUAL_BEHAVIOUR",
        "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT",
        "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
        "STATEMENT_CATEGORY_SELF_HARM",
        "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE",
        "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS",
        "STATEMENT_CATEGORY_VIOLENCE",
    }
)
#: The DSA ``decision_ground`` values: illegal under law, or against the terms.
DECISION_GROUNDS = frozenset(
    {"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"}
)
_DATA_FILE = "policies.json"


@dataclass(frozen=True)
class Policy:
    """One documented policy. ``strike`` says whether a violation counts against the creator."""

    id: str
    title: str
    description: str
    default_action: Status
    dsa_category: str | None
    decision_ground: str | None
    terms_section: str
    strike: bool
    legal_ground: str | None = None

    @property
    def restricts(self) -> bool:
        """Whether the policy describes a violation (anything but "no violation")."""
        return self.default_action is not Status.ELIGIBLE


class Taxonomy:
    """The policies by id; :meth:`get` refuses ids that are not documented.

    >>> tax = Taxonomy.load()
    >>> tax.get("violence-graphic").dsa_category
    'STATEMENT_CATEGORY_VIOLENCE'
    >>> tax.get("made-up")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trustfeed.moderation._workflow_errors.UnknownPolicy: no policy 'made-up' in the taxonomy ...
    """

    def __init__(self, policies: Mapping[str, Policy], *, version: int) -> None:
        if not policies:
            raise ModerationError("an empty taxonomy would let decisions cite nothing")
        self._policies = dict(policies)
        self.version = version

    @classmethod
    def load(cls, text: str | None = None) -> Taxonomy:
        """The shipped taxonomy, or one parsed from ``text`` (same JSON layout)."""
        if text is None:
            text = resources.files("trustfeed.moderation").joinpath("data", _DATA_FILE).read_text()
        try:
            doc = json.loads(text)
            policies = [_policy(p) for p in doc["policies"]]
            version = int(doc["version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModerationError(f"malformed policy taxonomy: {exc}") from exc
        ids = [p.id for p in policies]
        if len(set(ids)) != len(ids):
            raise ModerationError("policy ids in the taxonomy must be unique")
        return cls({p.id: p for p in policies}, version=version)

    def get(self, policy_id: str) -> Policy:
        """The policy ``policy_id``; :class:`UnknownPolicy` if it is not documented."""
        found = self._policies.get(policy_id)
        if found is None:
            raise UnknownPolicy(
                f"no policy {policy_id!r} in the taxonomy (known: {', '.join(sorted(self))})"
            )
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._policies)

    def __len__(self) -> int:
        return len(self._policies)

    def policies(self) -> list[Policy]:
        """Every policy, in the file's order."""
        return list(self._policies.values())


def _policy(raw: dict[str, Any]) -> Policy:
    """One policy from the file, checked against the DSA value lists."""
    policy = Policy(
        id=str(raw["id"]),
        title=str(raw["title"]),
        description=str(raw["description"]),
        default_action=Status(raw["default_action"]),
        dsa_category=raw["dsa_category"],
        decision_ground=raw["decision_ground"],
        terms_section=str(raw["terms_section"]),
        strike=bool(raw["strike"]),
        legal_ground=raw.get("legal_ground"),
    )
    if policy.default_action is Status.PENDING:
        raise ValueError(f"policy {policy.id}: pending is not an action")
    if policy.restricts and (
        policy.dsa_category not in DSA_CATEGORIES or policy.decision_ground not in DECISION_GROUNDS
    ):
        raise ValueError(f"policy {policy.id}: a restricting policy needs DSA category and ground")
    if policy.decision_ground == "DECISION_GROUND_ILLEGAL_CONTENT" and not policy.legal_ground:
        raise ValueError(f"policy {policy.id}: illegal-content policies must name the law")
    return policy

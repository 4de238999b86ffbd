"""The vocabulary every custody component shares: who asks, for what, about what.

A request names a principal (with role and jurisdiction), an action, and a
resource with its data class, owner and residency, plus the purpose and
justification the ARCHITECTURE requires on every request. The policy point
turns it into a :class:`Decision`; the vault only acts on an allowed one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol


class Role(enum.StrEnum):
    """The parties of ARCHITECTURE.md, plus service accounts."""

    CUSTODIAN = "custodian"
    OPERATOR = "operator"
    LICENSOR = "licensor"
    AUDITOR = "auditor"
    USER = "user"
    MODERATOR = "moderator"
    SERVICE = "service"


class Category(enum.StrEnum):
    """How sensitive a data class is; the first three are personal data."""

    RESTRICTED = "restricted"
    ALLOWABLE = "allowable"
    PSEUDONYMOUS = "pseudonymous"
    AGGREGATE = "aggregate"

    @property
    def personal(self) -> bool:
        return self is not Category.AGGREGATE


class DataClass(enum.StrEnum):
    """What a record holds; ``category`` decides how the policies treat it."""

    PRIVATE_VIDEO = "private_video"
    CONTACT_DETAILS = "contact_details"
    PRECISE_LOCATION = "precise_location"
    WATCH_HISTORY = "watch_history"
    SEARCH_HISTORY = "search_history"
    MESSAGES = "messages"
    #: Everything held about one user at once: what export and erasure act on.
    SUBJECT_DATA = "subject_data"
    PUBLIC_VIDEO = "public_video"
    PUBLIC_PROFILE = "public_profile"
    PSEUDONYMOUS_EVENTS = "pseudonymous_events"
    AGGREGATE_METRICS = "aggregate_metrics"

    @property
    def category(self) -> Category:
        return _CATEGORY[self]

    @property
    def personal(self) -> bool:
        return self.category.personal


_CATEGORY = {
    DataClass.PRIVATE_VIDEO: Category.RESTRICTED,
    DataClass.CONTACT_DETAILS: Category.RESTRICTED,
    DataClass.PRECISE_LOCATION: Category.RESTRICTED,
    DataClass.WATCH_HISTORY: Category.RESTRICTED,
    DataClass.SEARCH_HISTORY: Category.RESTRICTED,
    DataClass.MESSAGES: Category.RESTRICTED,
    DataClass.SUBJECT_DATA: Category.RESTRICTED,
    DataClass.PUBLIC_VIDEO: Category.ALLOWABLE,
    DataClass.PUBLIC_PROFILE: Category.ALLOWABLE,
    DataClass.PSEUDONYMOUS_EVENTS: Category.PSEUDONYMOUS,
    DataClass.AGGREGATE_METRICS: Category.AGGREGATE,
}


class Action(enum.StrEnum):
    """What a principal wants to do with a resource."""

    READ = "read"
    WRITE = "write"
    EXPORT = "export"
    ERASE = "erase"
    TRAIN = "train"
    APPROVE = "approve"
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: an id, the party's role and the requester's jurisdiction."""

    id: str
    role: Role
    jurisdiction: str


@dataclass(frozen=True, slots=True)
class Resource:
    """What is asked about. ``owner`` is the user the data belongs to, if any."""

    id: str
    data_class: DataClass
    residency: str
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One request to the policy point; purpose and justification are mandatory context."""

    principal: Principal
    action: Action
    resource: Resource
    purpose: str
    justification: str = ""
    grant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy point's answer, and where it was recorded.

    ``ledger_index`` is the decision's entry in the audit ledger; ``policy_hash``
    is the SHA-256 of the policy set in force when it was made.
    """

    request: AccessRequest
    allowed: bool
    reasons: tuple[str, ...]
    policy_hash: str
    ledger_index: int
    decided_at: float = field(compare=False, default=0.0)


class Authorizer(Protocol):
    """What the vault and the service need from the policy point."""

    def decide(self, request: AccessRequest) -> Decision:
        """Decide and record the decision (allow and deny) in the ledger."""
        ...

    def enforce(self, request: AccessRequest) -> Decision:
        """Like ``decide``, but raise :class:`AccessDenied` on a deny."""
        ...

"""Exceptions of the policy point; all are custody errors."""

from __future__ import annotations

from trustfeed.custody._errors import CustodyError


class PolicyError(CustodyError):
    """Base class for policy-point errors (policies, versions, grants)."""


class InvalidPolicy(PolicyError):
    """A policy set that does not parse, does not validate against the schema,
    or lacks the unique ``@id`` annotations that decision reasons rely on."""


class GrantError(PolicyError):
    """A grant operation that is refused: unknown grant, self-approval, a second
    approval by the same custodian, an expired or revoked grant, bad scope."""

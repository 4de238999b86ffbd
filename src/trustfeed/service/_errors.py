"""Errors of the running service; the HTTP layer maps each to a status code."""

from trustfeed.errors import TrustfeedError


class ServiceError(TrustfeedError):
    """Base class of the service's own errors (bad input: HTTP 400/422)."""


class Unauthenticated(ServiceError):
    """No token, or one that is unknown, revoked or expired (HTTP 401)."""


class Forbidden(ServiceError):
    """The principal may not do this (HTTP 403); denials of data access are in the ledger."""


class NotFound(ServiceError):
    """The named item, user, job or token does not exist (HTTP 404)."""


class Conflict(ServiceError):
    """The request clashes with current state, e.g. an item id already uploaded (HTTP 409)."""

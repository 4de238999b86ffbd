"""The event log's exceptions: one base, so callers can catch all of ours."""

from __future__ import annotations

from trustfeed.errors import TrustfeedError


class StreamError(TrustfeedError):
    """Base class for every error ``trustfeed.stream`` raises on purpose."""


class InvalidInputError(StreamError, ValueError):
    """Bad input: an empty or oversized key or payload, a bad offset, limit or name.

    Raised before anything is written, so the log is unchanged (invariant 8).
    """


class LogLockedError(StreamError):
    """Another process (or another open log in this one) holds the directory's lock."""


class CorruptLogError(StreamError):
    """Stored data that does not verify and is not a torn tail that may be dropped."""


class LogClosedError(StreamError):
    """The log was closed, or failed and must be reopened (after a failed fsync)."""


class StreamUnavailableError(StreamError):
    """The backend (NATS) cannot be reached or did not answer in time.

    An append that fails this way may or may not have been stored: retry it with
    the same idempotency keys and the log keeps each event once.
    """

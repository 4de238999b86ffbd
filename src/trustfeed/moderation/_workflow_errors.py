"""Errors of the review workflow (queue, appeals, strikes, statements of reasons).

All derive from :class:`ModerationError`, so ``except ModerationError`` still
catches everything the moderation package raises on purpose.
"""

from __future__ import annotations

from trustfeed.moderation._errors import ModerationError


class UnknownPolicy(ModerationError):
    """A policy id that the taxonomy does not document: decisions must cite a real one."""


class UnknownJob(ModerationError):
    """A review job or appeal id that does not exist."""


class LeaseRefused(ModerationError):
    """A claim or decision on a job whose lease another moderator holds (or nobody does)."""


class JobClosed(ModerationError):
    """A job that was already decided: decisions are final except through an appeal."""


class AppealRefused(ModerationError):
    """An appeal that may not be filed or resolved (same moderator, nothing to appeal, …)."""


class InvalidStatement(ModerationError):
    """A statement of reasons that does not satisfy the DSA schema."""

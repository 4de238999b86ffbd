"""Text screening's exceptions, under the moderation package's one base."""

from __future__ import annotations

from trustfeed.moderation._errors import ModerationError


class TextScreeningError(ModerationError):
    """Base class for every error ``trustfeed.moderation.text`` raises on purpose."""


class InvalidPattern(TextScreeningError):
    """A bank pattern that does not compile, is too long, or backtracks too much."""


class PatternTimeout(TextScreeningError):
    """A pattern ran past its time limit on a text (the gate then fails closed)."""


class ClassifierUnavailable(TextScreeningError):
    """A classifier whose package (and so its shipped model) is not installed."""

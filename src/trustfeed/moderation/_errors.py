"""The moderation package's exceptions: one base, so callers can catch all of ours."""

from __future__ import annotations

from trustfeed.errors import TrustfeedError


class ModerationError(TrustfeedError):
    """Base class for every error ``trustfeed.moderation`` raises on purpose."""


class IllegalTransition(ModerationError):
    """A decision the transition table does not allow (or a stale one that lost a race)."""


class UnknownItem(ModerationError):
    """An item id the gate has never seen uploaded."""


class UnknownBank(ModerationError):
    """A bank name that does not exist."""


class UnsupportedMedia(ModerationError):
    """Bytes that no signal type can hash (not an image, truncated, too large)."""


class InvalidSignal(ModerationError):
    """A hash string that is not a valid value of its signal type."""

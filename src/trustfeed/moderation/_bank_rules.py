"""What every kind of bank shares: the on/off switch and allow-list suppression.

Media banks (PDQ, MD5, SHA-256), video banks (vPDQ) and text banks each
match differently, but whether a bank counts now and how an allow-list
(negative) bank overrides the others must be one rule, written once here.
This module imports nothing of the package, so each bank module can use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar


class Switchable:
    """A bank's on/off controls: a mixin for the bank settings dataclasses."""

    enabled: bool
    disable_until: float | None

    def active(self, now: float) -> bool:
        """Whether matches count now: enabled, and any ``disable_until`` has passed."""
        return self.enabled and (self.disable_until is None or now >= self.disable_until)


M = TypeVar("M")


@dataclass(frozen=True)
class MatchResult(Generic[M]):
    """Positive matches, and the negative-bank matches that (if any) suppress them.

    Why all of them, not per bank: an allow-list lists media or text known to
    be benign that collides with banked content, so it overrides every bank.
    """

    matches: list[M]
    suppressed_by: list[M]

    @property
    def actionable(self) -> list[M]:
        """The matches to act on: none when an allow-list bank matched too."""
        return [] if self.suppressed_by else self.matches

    @classmethod
    def split(cls, found: Sequence[M], negative: Callable[[M], bool]) -> MatchResult[M]:
        """Sort ``found`` into positive matches and the negative ones that suppress them."""
        return cls([m for m in found if not negative(m)], [m for m in found if negative(m)])

"""Exceptions of the custody boundary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustfeed.errors import TrustfeedError

if TYPE_CHECKING:
    from trustfeed.custody._access import Decision


class CustodyError(TrustfeedError):
    """Base class for custody errors (ledger, policy, vault, pseudonyms)."""


class LedgerError(CustodyError):
    """The ledger cannot be opened, appended to, or asked for a proof."""


class VerificationError(LedgerError):
    """A proof, checkpoint or stored entry does not verify.

    ``index`` names the first entry that does not verify, where one is known.
    """

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class AccessDenied(CustodyError):
    """The policy point denied a request; the denial is already in the ledger."""

    def __init__(self, decision: Decision) -> None:
        reasons = "; ".join(decision.reasons) or "no policy permits it (deny by default)"
        super().__init__(f"access denied: {reasons}")
        self.decision = decision

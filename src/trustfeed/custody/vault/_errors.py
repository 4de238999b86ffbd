"""Exceptions of the vault."""

from __future__ import annotations

from trustfeed.custody._errors import CustodyError


class VaultError(CustodyError):
    """A vault operation failed: a bad request, a missing key, a record that will not open."""


class RecordNotFound(VaultError):
    """No record with that id belongs to the owner the decision names."""


class ErasedError(VaultError):
    """The user's data was erased: their data key is destroyed and nothing can be read."""

"""Exceptions of algorithm packages and training lineage (one base: :class:`PackageError`)."""

from __future__ import annotations

from trustfeed.recommend._base import RecommendError


class PackageError(RecommendError):
    """Base class: a package or a training run that the custodian must refuse."""


class IntegrityError(PackageError):
    """A package whose bytes do not match its manifest (modified, missing or extra files)."""


class SignatureError(PackageError):
    """A package that is unsigned, or not signed by a licensor key the custodian trusts."""


class NotApprovedError(PackageError):
    """A package that no custodian approved (or whose approval was withdrawn)."""


class LineageError(PackageError):
    """A training run whose lineage cannot be recorded or does not verify."""


class NonDomesticDataError(LineageError):
    """Training data that is not (or not known to be) domestic: the run is aborted."""

"""The bench package's exceptions."""

from __future__ import annotations

from trustfeed.errors import TrustfeedError


class BenchError(TrustfeedError):
    """Base class for errors of the benchmarks."""


class PeerUnavailableError(BenchError, ImportError):
    """A peer library is not installed (it ships in the ``bench`` extra)."""

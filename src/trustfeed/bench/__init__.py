"""Benchmarks of trustfeed against peer recommenders (``trustfeed bench``).

The peers need the ``bench`` extra (``pip install 'trustfeed[bench]'``);
they import their libraries only when fitted.
"""

from trustfeed.bench._errors import BenchError, PeerUnavailableError
from trustfeed.bench._peers import (
    EASE,
    PEERS,
    ImplicitALS,
    ImplicitBPR,
    LightFMWarp,
    MatrixPeer,
    Popularity,
)
from trustfeed.bench._quality import MODELS, OURS, run_quality

__all__ = [
    "EASE",
    "MODELS",
    "OURS",
    "PEERS",
    "BenchError",
    "ImplicitALS",
    "ImplicitBPR",
    "LightFMWarp",
    "MatrixPeer",
    "PeerUnavailableError",
    "Popularity",
    "run_quality",
]

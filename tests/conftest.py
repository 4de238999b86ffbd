"""Fixtures shared by the whole test suite.

``../shared`` (beside the repository root) holds the datasets and test media
that developers and CI have but a user's fresh clone does not; tests that need
it take one of these fixtures and are skipped, with the reason, when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: ``<repo>/../shared``: tests/ → repository root → its parent.
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` directory, or skip the test when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip("needs ../shared beside the repository root (absent in a fresh clone)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets`` (ml-100k, amazon-beauty, lastfm, kuairand-1k), or skip."""
    datasets = SHARED_DIR / "datasets"
    if not datasets.is_dir():
        pytest.skip("needs ../shared/datasets beside the repository root (absent in a fresh clone)")
    return datasets

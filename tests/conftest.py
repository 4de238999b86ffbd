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


#: The PostgreSQL server that development and CI machines run (trust auth).
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_reachable() -> str | None:
    """None when the server answers, else why not (for the skip message)."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(POSTGRES_URL.replace("postgresql:", "postgresql+psycopg:"))
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure means "not here": skip with the reason
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty database on each backend: an SQLite file, and a PostgreSQL
    schema of its own (dropped afterwards) so tests never see each other's rows."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    import uuid

    import sqlalchemy as sa

    why_not = _postgres_reachable()
    if why_not is not None:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database test) not reachable: {why_not}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL.replace("postgresql:", "postgresql+psycopg:"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

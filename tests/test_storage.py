"""The storage registry: URLs open the right backend, bad URLs get clear errors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from trustfeed.storage import StorageError, open_engine, redact_url


def test_each_backend_round_trips_a_committed_row(database_url: str) -> None:
    engine = open_engine(database_url)
    meta = sa.MetaData()
    table = sa.Table("t", meta, sa.Column("k", sa.Integer, primary_key=True))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert().values(k=7))
    engine.dispose()
    reopened = open_engine(database_url)
    with reopened.connect() as conn:
        assert conn.execute(sa.select(table.c.k)).scalar_one() == 7
    reopened.dispose()


def test_in_memory_sqlite_is_one_database_across_connections() -> None:
    engine = open_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (k INTEGER)"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 0
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x@localhost/db", "unknown storage scheme 'mysql'"),
        ("not a url", "not a storage URL"),
        ("postgresql://nobody:secret@127.0.0.1:1/none", "cannot connect"),
    ],
)
def test_bad_urls_get_clear_errors(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as info:
        open_engine(url)
    assert "secret" not in str(info.value)


def test_redact_url_hides_the_password() -> None:
    assert "secret" not in redact_url("postgresql://u:secret@h/db")


def test_readers_never_create_a_missing_sqlite_file(tmp_path) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(StorageError, match="no SQLite database"):
        open_engine(f"sqlite:///{missing}", must_exist=True)
    assert not missing.exists()

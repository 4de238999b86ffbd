"""One registry from URL scheme to an SQLAlchemy engine factory.

The registry is what makes "SQLite embedded, PostgreSQL scale-out" one code
path: each factory sets the durability options its database needs so that a
committed transaction is on disk when ``commit()`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from trustfeed.errors import TrustfeedError


class StorageError(TrustfeedError):
    """A storage URL that cannot be opened, or a backend failure."""


#: A 64-bit row id that autoincrements on both backends: BIGINT on PostgreSQL,
#: and SQLite's INTEGER (only ``INTEGER PRIMARY KEY`` is SQLite's rowid alias).
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

EngineFactory = Callable[[sa.URL, bool], sa.Engine]
_FACTORIES: dict[str, EngineFactory] = {}


def register_scheme(scheme: str, factory: EngineFactory) -> None:
    """Make ``open_engine`` accept URLs that start with ``scheme://``."""
    _FACTORIES[scheme] = factory


def open_engine(url: str, *, must_exist: bool = False) -> sa.Engine:
    """Open the backend named by ``url``; a clear StorageError for anything else.

    ``must_exist=True`` is for readers (auditors, exports): a mistyped SQLite
    path then fails instead of silently creating an empty database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"not a storage URL: {url!r} (try sqlite:///path.db)") from exc
    scheme = parsed.drivername.split("+", 1)[0]
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(sorted(_FACTORIES))
        raise StorageError(
            f"unknown storage scheme {scheme!r} in {redact_url(url)}; known: {known}"
        )
    return factory(parsed, must_exist)


def redact_url(url: str) -> str:
    """The URL with any password hidden, for error messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _sqlite_engine(url: sa.URL, must_exist: bool) -> sa.Engine:
    in_memory = url.database in (None, "", ":memory:")
    if must_exist and (in_memory or not Path(str(url.database)).is_file()):
        raise StorageError(f"no SQLite database at {url.database or ':memory:'}")
    if in_memory:
        # One shared connection, or each checkout would see a different empty database.
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        engine = sa.create_engine(url.set(drivername="sqlite"), connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _durable(dbapi_connection: Any, _record: Any) -> None:
        # WAL + synchronous=FULL: a commit is fsynced before it returns.
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        # pysqlite opens transactions only before DML and never before SAVEPOINT,
        # so a savepoint's RELEASE committed everything written so far: a later
        # failure in the same ``engine.begin()`` block could not roll it back.
        # SQLAlchemy's documented recipe: the driver does nothing, we emit BEGIN.
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        # IMMEDIATE: a deferred transaction that reads, then writes after another
        # connection committed, fails at once (SQLITE_BUSY_SNAPSHOT; the busy
        # timeout cannot help). Taking the write lock up front makes writers
        # queue instead; SQLite has one writer at a time anyway.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgresql_engine(url: sa.URL, must_exist: bool) -> sa.Engine:
    del must_exist  # connecting already fails for a database that does not exist
    # psycopg 3; PostgreSQL's default synchronous_commit=on makes commits durable.
    engine = sa.create_engine(url.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise StorageError(f"cannot connect to {redact_url(str(url))}: {exc.orig}") from exc
    return engine


register_scheme("sqlite", _sqlite_engine)
register_scheme("postgresql", _postgresql_engine)

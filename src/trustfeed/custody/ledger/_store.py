"""The ledger's SQL tables and the few statements that touch them (SQLAlchemy 2 Core).

Tables (one ledger per database or PostgreSQL schema, all prefixed ``ledger_``):

* ``ledger_meta``: one row (id 1) holding the tree size and origin. Every write
  transaction starts by updating it, which serialises writers: a row lock on
  PostgreSQL, the database write lock on SQLite (the UPDATE is the
  transaction's first statement, so SQLite takes the write lock before reading
  anything and no writer works from a stale snapshot).
* ``ledger_entries``: (idx, data), the entry bytes as appended.
* ``ledger_nodes``: (level, idx, hash) for every *complete* subtree, leaves at
  level 0; written in the same transaction as the entries, immutable after,
  so any proof is one indexed lookup of O(log n) rows.
* ``ledger_checkpoints``: every signed checkpoint note the ledger issued.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Generator, Sequence
from typing import Any

import sqlalchemy as sa

from trustfeed.custody._errors import LedgerError
from trustfeed.custody.ledger._merkle import Frontier, Node, range_nodes
from trustfeed.storage import ROW_ID

FORMAT_VERSION = 1
_META_ID = 1
# An INTEGER PRIMARY KEY is SQLite's rowid: no second index for the entries.

metadata = sa.MetaData()
meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("origin", sa.Text, nullable=True),
    sa.Column("format_version", sa.Integer, nullable=False),
)
entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("idx", ROW_ID, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


def create_schema(engine: sa.Engine, *, origin: str | None) -> str | None:
    """Create the tables if absent; return the stored origin (recording ``origin`` if new)."""
    metadata.create_all(engine, checkfirst=True)
    row = {"id": _META_ID, "size": 0, "origin": origin, "format_version": FORMAT_VERSION}
    try:
        with engine.begin() as conn:
            if conn.execute(sa.select(meta.c.id)).first() is None:
                conn.execute(meta.insert().values(**row))
    except sa.exc.IntegrityError:
        pass  # another process created it first
    with engine.begin() as conn:
        stored = conn.execute(sa.select(meta.c.origin, meta.c.format_version)).one()
        if stored.format_version != FORMAT_VERSION:
            raise LedgerError(f"ledger format {stored.format_version} is not supported")
        if stored.origin is None and origin is not None:
            conn.execute(meta.update().values(origin=origin))
            return origin
    return str(stored.origin) if stored.origin is not None else None


def require_schema(engine: sa.Engine) -> None:
    """Fail clearly when the URL holds no ledger (auditors must not create one)."""
    present = set(sa.inspect(engine).get_table_names())
    missing = [t for t in metadata.tables if t not in present]
    if missing:
        raise LedgerError(f"no ledger in this store (missing tables: {', '.join(missing)})")


def lock_and_size(conn: sa.Connection) -> int:
    """Take the writers' lock (see the module doc) and read the committed tree size."""
    touch = meta.update().where(meta.c.id == _META_ID).values(size=meta.c.size)
    return int(conn.execute(touch.returning(meta.c.size)).scalar_one())


def read_size(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(meta.c.size).where(meta.c.id == _META_ID)).scalar_one())


def read_origin(conn: sa.Connection) -> str | None:
    origin = conn.execute(sa.select(meta.c.origin).where(meta.c.id == _META_ID)).scalar_one()
    return None if origin is None else str(origin)


def fetch_nodes(conn: sa.Connection, wanted: Sequence[Node]) -> dict[Node, bytes]:
    """The stored hashes of the given complete subtrees, in one query.

    Written as ``(level = ? AND idx = ?) OR …`` rather than a row-value IN:
    SQLite answers the OR form with one primary-key probe per term but scans
    the whole table for the IN form (measured: 4 ms vs 0.1 ms at 40k nodes).
    """
    if not wanted:
        return {}
    params = {}
    for k, (level, idx) in enumerate(wanted):
        params[f"l{k}"], params[f"i{k}"] = level, idx
    rows = conn.execute(_nodes_query(len(wanted)), params)
    return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}


@functools.lru_cache(maxsize=256)
def _nodes_query(count: int) -> sa.Select[Any]:
    """The lookup of ``count`` nodes, built once per count: building costs more than running."""
    terms = [
        sa.and_(nodes.c.level == sa.bindparam(f"l{k}"), nodes.c.idx == sa.bindparam(f"i{k}"))
        for k in range(count)
    ]
    return sa.select(nodes.c.level, nodes.c.idx, nodes.c.hash).where(sa.or_(*terms))


def load_frontier(conn: sa.Connection, size: int) -> Frontier:
    """The right edge of the stored tree of ``size`` leaves (after another writer appended)."""
    wanted = range_nodes(0, size)
    found = fetch_nodes(conn, wanted)
    try:
        return Frontier(size, [found[n] for n in wanted])
    except KeyError as exc:
        raise LedgerError(f"stored tree is missing subtree {exc.args[0]}") from exc


def write_batch(
    conn: sa.Connection,
    start: int,
    data: Sequence[bytes],
    closed: Sequence[tuple[int, int, bytes]],
) -> None:
    """Insert entries from index ``start`` and the subtrees they complete; bump the size."""
    conn.execute(entries.insert(), [{"idx": start + i, "data": d} for i, d in enumerate(data)])
    conn.execute(nodes.insert(), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in closed])
    new_size = start + len(data)
    conn.execute(meta.update().where(meta.c.id == _META_ID).values(size=new_size))


def read_entries(conn: sa.Connection, start: int, stop: int) -> list[bytes]:
    query = (
        sa.select(entries.c.idx, entries.c.data)
        .where(entries.c.idx >= start, entries.c.idx < stop)
        .order_by(entries.c.idx)
    )
    rows = conn.execute(query).all()
    if [int(r[0]) for r in rows] != list(range(start, stop)):
        raise LedgerError(f"entries {start}..{stop - 1} are not all in the store")
    return [bytes(r[1]) for r in rows]


def iter_entries(
    conn: sa.Connection, *, chunk: int = 10_000
) -> Generator[tuple[int, bytes], None, None]:
    """Every stored (idx, data) in index order, streamed (an audit reads millions)."""
    query = sa.select(entries.c.idx, entries.c.data).order_by(entries.c.idx)
    streaming = conn.execution_options(stream_results=True, yield_per=chunk)
    with streaming.execute(query) as result:  # closes PostgreSQL's server-side cursor
        for idx, data in result:
            yield int(idx), bytes(data)


def insert_checkpoint(conn: sa.Connection, size: int, root: bytes, note: str) -> None:
    row = {"size": size, "root": root, "note": note, "created_at": time.time()}
    conn.execute(checkpoints.insert().values(**row))


def latest_checkpoint(conn: sa.Connection) -> str | None:
    query = sa.select(checkpoints.c.note).order_by(checkpoints.c.id.desc()).limit(1)
    note = conn.execute(query).scalar_one_or_none()
    return None if note is None else str(note)


def all_checkpoints(conn: sa.Connection) -> list[str]:
    """Every stored checkpoint note, oldest first."""
    query = sa.select(checkpoints.c.note).order_by(checkpoints.c.id)
    return [str(n) for n in conn.execute(query).scalars()]

"""Moderation tables (SQLAlchemy Core, the same on SQLite and PostgreSQL).

Item status is derived state; ``moderation_transitions`` is the record of
every decision and the cursor the recommender's eligibility feed follows.
Hashes are stored as lowercase hex, the form ThreatExchange exchanges them in.
"""

from __future__ import annotations

import sqlalchemy as sa

from trustfeed.storage import ROW_ID

metadata = sa.MetaData()


#: The current status of every uploaded item.
items = sa.Table(
    "moderation_items",
    metadata,
    sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(24), nullable=False, index=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: Every transition; ``from_status`` is NULL for the upload that created the item.
transitions = sa.Table(
    "moderation_transitions",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("from_status", sa.String(24), nullable=True),
    sa.Column("to_status", sa.String(24), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("actor", sa.String(130), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
)

#: Signals computed at upload, kept so a new bank hash can re-scan published items.
#: ``variant`` is the dihedral transform (0 = as uploaded, 1..7 rotations/flips).
item_signals = sa.Table(
    "moderation_item_signals",
    metadata,
    sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("signal", sa.String(32), primary_key=True),
    sa.Column("variant", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("value", sa.String(128), nullable=False),
    sa.Column("quality", sa.SmallInteger, nullable=True),
)

#: Named banks. ``action`` is the status a positive match moves an item to.
banks = sa.Table(
    "moderation_banks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("negative", sa.Boolean, nullable=False),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("pdq_threshold", sa.SmallInteger, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disable_until", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: Bank contents; ``id`` orders additions so an index can load only what is new.
bank_entries = sa.Table(
    "moderation_bank_entries",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("bank", sa.String(64), sa.ForeignKey("moderation_banks.name"), nullable=False),
    sa.Column("signal", sa.String(32), nullable=False),
    sa.Column("value", sa.String(128), nullable=False),
    sa.Column("note", sa.String(200), nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.UniqueConstraint("bank", "signal", "value", name="uq_moderation_bank_entry"),
    sa.Index("ix_moderation_bank_entries_value", "signal", "value"),
)


def add_missing_columns(engine: sa.Engine, table: sa.Table) -> list[str]:
    """Add the columns of ``table`` that a store made by an older version lacks.

    Why: ``create_all`` creates missing tables but never alters existing ones,
    so a store written before a column existed would fail on its first query.
    Only columns that are nullable or have a server default can be added this
    way (both backends then fill the old rows); the names added are returned.
    """
    with engine.begin() as conn:
        have = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
        added = [c for c in table.columns if c.name not in have]
        for column in added:
            spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {spec}"))
        names = [c.name for c in added]
        for index in table.indexes:  # an index on a new column is new too
            if any(c.name in names for c in index.columns):
                index.create(conn)
    return names

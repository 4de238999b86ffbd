"""SQL tables of the package registry, in the custody store (SQLAlchemy Core).

The ledger is the record of what happened; these tables are the custodian's
working index of it (trusted keys, decisions, and the approved packages'
bytes, so a deployment builds from exactly what was approved).
"""

from __future__ import annotations

import sqlalchemy as sa

from trustfeed.storage import ROW_ID

metadata = sa.MetaData()

trusted_keys = sa.Table(
    "package_trusted_keys",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("key_id", sa.String(8), primary_key=True),
    sa.Column("verifier", sa.Text, nullable=False),
    sa.Column("trusted_by", sa.String(256), nullable=False),
    sa.Column("trusted_at", sa.Float, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
)

decisions = sa.Table(
    "package_decisions",
    metadata,
    sa.Column("seq", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("package_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),  # "approved" or "rejected"
    sa.Column("decided_by", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("signed_by", sa.Text, nullable=False),  # JSON list of trusted key names
    sa.Column("decided_at", sa.Float, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
    sa.Column("manifest", sa.Text, nullable=False),  # what the next review diffs against
    sa.Column("config", sa.Text, nullable=False),
)

# The approved packages' files, byte for byte (manifest and signature included).
files = sa.Table(
    "package_files",
    metadata,
    sa.Column("package_id", sa.String(64), primary_key=True),
    sa.Column("path", sa.String(512), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)


def create_tables(engine: sa.Engine) -> None:
    """Create the tables that are missing (idempotent)."""
    metadata.create_all(engine, checkfirst=True)

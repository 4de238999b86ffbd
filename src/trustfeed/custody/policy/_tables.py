"""SQL tables of the policy point: grants, their approvals, and policy versions.

SQLAlchemy Core over whatever ``trustfeed.storage.open_engine`` returns, so
the same rows live in SQLite (embedded) or PostgreSQL (scale-out).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

grants = sa.Table(
    "policy_grants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("grantee_id", sa.String(256), nullable=False),
    sa.Column("grantee_role", sa.String(32), nullable=False),
    sa.Column("actions", sa.Text, nullable=False),  # JSON list of Action values
    sa.Column("data_classes", sa.Text, nullable=False),  # JSON list of DataClass values
    sa.Column("purpose", sa.String(256), nullable=False),
    sa.Column("owner", sa.String(256), nullable=True),
    sa.Column("allow_transfer", sa.Boolean, nullable=False),
    sa.Column("justification", sa.Text, nullable=False),
    sa.Column("requested_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("revoked_by", sa.String(256), nullable=True),
)

# The primary key makes "the same custodian approves twice" impossible even
# under concurrent approvals.
grant_approvals = sa.Table(
    "policy_grant_approvals",
    metadata,
    sa.Column("grant_id", sa.String(64), sa.ForeignKey("policy_grants.id"), primary_key=True),
    sa.Column("approver_id", sa.String(256), primary_key=True),
    sa.Column("approved_at", sa.Float, nullable=False),
)

policy_versions = sa.Table(
    "policy_versions",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("actor_id", sa.String(256), nullable=False),
    sa.Column("actor_role", sa.String(32), nullable=False),
    sa.Column("activated_at", sa.Float, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
)


def create_tables(engine: sa.Engine) -> None:
    """Create the tables that are missing (idempotent)."""
    metadata.create_all(engine, checkfirst=True)

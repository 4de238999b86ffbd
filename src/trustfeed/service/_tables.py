"""The service's own tables: API tokens, the catalogue, user settings.

Settings name users by the custodian's keyed digest (the one the vault
stores). A user's own token names its user (it authenticates that user), and
erasure revokes it along with everything else.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: API tokens, stored as SHA-256 of the secret (the secret is shown once).
tokens = sa.Table(
    "service_tokens",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("principal", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("jurisdiction", sa.String(2), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("issued_by", sa.String(128), nullable=False),
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

#: Public metadata of uploaded videos, and the pseudonym the model knows each by.
catalog = sa.Table(
    "service_catalog",
    metadata,
    sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("pseudonym", sa.BigInteger, nullable=False, unique=True),
    sa.Column("creator_id", sa.String(128), nullable=False),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("duration_ms", sa.BigInteger, nullable=False),
    sa.Column("caption", sa.String(2200), nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("uploaded_at", sa.Float, nullable=False),
)

#: Per-user settings, keyed by the custodian's digest of the user id.
settings = sa.Table(
    "service_user_settings",
    metadata,
    sa.Column("owner_digest", sa.String(120), primary_key=True),
    sa.Column("personalised", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

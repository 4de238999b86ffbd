"""The vault's tables (SQLAlchemy Core, the same on SQLite and PostgreSQL).

Owners appear only as keyed hashes; record contents only as AES-GCM
ciphertext. The metadata columns (class, residency, times) stay in clear
because the policy point and retention need them without a decryption.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: Settings fixed when the store is created (e.g. the owner-hash key version).
meta = sa.Table(
    "vault_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

#: One data key per owner, wrapped (AES-GCM) under the named custodian KEK.
data_keys = sa.Table(
    "vault_data_keys",
    metadata,
    sa.Column("owner", sa.String(80), primary_key=True),
    sa.Column("kek_id", sa.String(64), nullable=False),
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("wrapped_at", sa.Float, nullable=False),
)

#: Personal records, each sealed under its owner's data key.
records = sa.Table(
    "vault_records",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(80), nullable=False, index=True),
    sa.Column("data_class", sa.String(40), nullable=False),
    sa.Column("residency", sa.String(16), nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
)

#: Tombstones: who was erased, when, what, and the ledger entry that says so
#: (NULL until the entry is appended; a retried erase completes it).
erasures = sa.Table(
    "vault_erasures",
    metadata,
    sa.Column("owner", sa.String(80), primary_key=True),
    sa.Column("erased_at", sa.Float, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("data_classes", sa.String(400), nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=True),
)

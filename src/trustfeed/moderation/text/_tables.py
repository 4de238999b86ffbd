"""Text-screening tables, on the moderation package's shared ``metadata``.

Importing this module adds them, so ``metadata.create_all`` (which the gate and
the banks call) creates them beside the media tables on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from trustfeed.moderation._tables import metadata
from trustfeed.storage import ROW_ID

#: Named text banks. ``action`` is the status a match moves an item to; a
#: ``negative`` bank is an allow-list whose matches suppress every other bank's;
#: ``disable_until`` pauses a bank until then (as media banks). Those two came
#: later: ``TextBanks`` adds them to older stores (``add_missing_columns``).
text_banks = sa.Table(
    "moderation_text_banks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("negative", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disable_until", sa.Float, nullable=True),
)

#: Phrases and patterns. ``value`` is what was entered; ``key`` what is matched
#: (a phrase's skeleton, or the pattern itself); ``normalizer`` the
#: :data:`NORMALIZER_VERSION` that made the key, so a change is detectable.
text_bank_entries = sa.Table(
    "moderation_text_bank_entries",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("bank", sa.String(64), sa.ForeignKey("moderation_text_banks.name"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("value", sa.String(500), nullable=False),
    sa.Column("key", sa.String(500), nullable=False),
    sa.Column("normalizer", sa.String(8), nullable=False),
    sa.Column("note", sa.String(200), nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.UniqueConstraint("bank", "kind", "key", name="uq_moderation_text_bank_entry"),
)

#: Classifier scores of screened items, each with the model's name and version.
text_scores = sa.Table(
    "moderation_text_scores",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("model", sa.String(80), nullable=False),
    sa.Column("version", sa.String(80), nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

#: Captions of uploaded items, kept so that a new bank entry can re-scan what
#: is already published (the text-side twin of the media banks' re-scan).
captions = sa.Table(
    "moderation_captions",
    metadata,
    sa.Column("item_id", sa.BigInteger, primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

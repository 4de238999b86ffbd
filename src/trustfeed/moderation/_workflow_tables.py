"""Tables of the review workflow, on the moderation package's shared ``metadata``.

Why separate rows for jobs, decisions and the items they touched: a job
groups duplicates of one media, a decision applies to every item in it, and
appeals, strikes and statements of reasons each need to find "the decision
that moved this item" from a gate transition id (``decision_items``).
"""

from __future__ import annotations

import sqlalchemy as sa

from trustfeed.moderation._tables import metadata
from trustfeed.storage import ROW_ID

#: One unit of human review: every item in it shares one media (exact or PDQ-near).
review_jobs = sa.Table(
    "moderation_review_jobs",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("media_key", sa.String(160), nullable=False, index=True),
    sa.Column("pdq", sa.String(64), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("detected_by", sa.String(130), nullable=False),
    sa.Column("state", sa.String(12), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("claimed_by", sa.String(130), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("decided_at", sa.Float, nullable=True),
    # Which review queue (team) works the job; stores from before queues had names get
    # the column with this default when a ReviewQueue opens them (add_missing_columns).
    sa.Column("queue", sa.String(64), nullable=False, server_default="default", index=True),
)

review_job_items = sa.Table(
    "moderation_review_job_items",
    metadata,
    sa.Column("job_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("added_at", sa.Float, nullable=False),
)

#: Every moderator decision (review jobs); ``policy_id`` is a taxonomy id.
review_decisions = sa.Table(
    "moderation_review_decisions",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("moderator", sa.String(130), nullable=False),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("policy_id", sa.String(64), nullable=False),
    sa.Column("note", sa.String(1000), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
)

#: Which gate transition a decision made for each item (NULL: the item was already there).
decision_items = sa.Table(
    "moderation_decision_items",
    metadata,
    sa.Column("decision_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("transition_id", sa.BigInteger, nullable=True, index=True),
)

#: Each time a moderator unblurred media (reviewer wellness: blurred is the default).
review_reveals = sa.Table(
    "moderation_review_reveals",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("moderator", sa.String(130), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
)

strikes = sa.Table(
    "moderation_strikes",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("creator", sa.String(130), nullable=False, index=True),
    sa.Column("decision_id", sa.BigInteger, nullable=False),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("policy_id", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("removed_at", sa.Float, nullable=True),
    sa.Column("removed_reason", sa.String(500), nullable=True),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("decision_id", "item_id", name="uq_moderation_strike"),
)

#: An appeal of the transition that restricted an item.
appeals = sa.Table(
    "moderation_appeals",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("transition_id", sa.BigInteger, nullable=False),
    sa.Column("decision_id", sa.BigInteger, nullable=True),
    sa.Column("decided_by", sa.String(130), nullable=False),
    sa.Column("appellant", sa.String(130), nullable=False),
    sa.Column("statement", sa.String(2000), nullable=False),
    sa.Column("state", sa.String(12), nullable=False, index=True),
    sa.Column("filed_at", sa.Float, nullable=False),
    sa.Column("assigned_to", sa.String(130), nullable=True),
    sa.Column("resolved_by", sa.String(130), nullable=True),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Column("note", sa.String(1000), nullable=True),
)

#: Statements of reasons, as the JSON the DSA Transparency Database accepts.
dsa_statements = sa.Table(
    "moderation_dsa_statements",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("puid", sa.String(120), nullable=False, unique=True),
    sa.Column("transition_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
)

#: Named cursors over the gate's transition history (one row per follower).
cursors = sa.Table(
    "moderation_workflow_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

#: One row per positive bank match at upload, for the match-flood alarm.
match_log = sa.Table(
    "moderation_match_log",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("bank", sa.String(64), nullable=False),
    sa.Column("entry_id", sa.BigInteger, nullable=False),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_moderation_match_log_at", "at", "entry_id"),
)

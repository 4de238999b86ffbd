"""Read-only views of the review workflow that ``ReviewQueue`` has no method for (yet).

The console needs the named queues with their open counts, the jobs a
moderator holds now (``pending`` leaves out leased jobs), and which media a
moderator has already revealed. These read the moderation package's own
tables; nothing here writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from trustfeed.moderation import Actor, Job, ReviewQueue
from trustfeed.moderation import _workflow_tables as w

OPEN = "open"


@dataclass(frozen=True)
class QueueCount:
    name: str
    open: int


def queue_counts(engine: sa.Engine) -> list[QueueCount]:
    """Every queue with open jobs, by name."""
    j = w.review_jobs.c
    query = (
        sa.select(j.queue, sa.func.count())
        .where(j.state == OPEN)
        .group_by(j.queue)
        .order_by(j.queue)
    )
    with engine.connect() as conn:
        return [QueueCount(str(name), int(n)) for name, n in conn.execute(query)]


def held_by(engine: sa.Engine, review: ReviewQueue, moderator: str) -> list[Job]:
    """Open jobs whose unexpired lease ``moderator`` holds (to return to a review)."""
    j = w.review_jobs.c
    who = str(Actor("moderator", moderator))
    query = (
        sa.select(j.id)
        .where(j.state == OPEN, j.claimed_by == who, j.lease_until > time.time())
        .order_by(j.id)
    )
    with engine.connect() as conn:
        ids = [int(x) for x in conn.execute(query).scalars()]
    return [review.job(i) for i in ids]


def revealed(engine: sa.Engine, job_id: int, moderator: str) -> set[int]:
    """Items of the job the moderator has unblurred (each reveal is in the ledger)."""
    r = w.review_reveals.c
    who = str(Actor("moderator", moderator))
    query = sa.select(r.item_id).where(r.job_id == job_id, r.moderator == who)
    with engine.connect() as conn:
        return {int(x) for x in conn.execute(query).scalars()}


def holds(job: Job, moderator: str) -> bool:
    """Whether ``moderator`` holds an unexpired lease on ``job``."""
    who = str(Actor("moderator", moderator))
    return job.state == OPEN and job.claimed_by == who and (job.lease_until or 0) > time.time()

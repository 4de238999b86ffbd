"""Exposure accounting: how often each topic and creator was served, per time bucket.

Feeds count impressions in memory (a feed request must not wait for a
write); the pipeline flushes the counts to SQL every few seconds. Oversight
(charts, amplification alerts) reads the flushed series.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

BUCKET_S = 60

metadata = sa.MetaData()
exposure = sa.Table(
    "service_exposure",
    metadata,
    sa.Column("bucket", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("dimension", sa.String(16), primary_key=True),
    sa.Column("value", sa.String(128), primary_key=True),
    sa.Column("personalised", sa.Boolean, primary_key=True),
    sa.Column("impressions", sa.BigInteger, nullable=False),
)
DIMENSIONS = ("topic", "creator")


@dataclass(frozen=True)
class Point:
    bucket: int  # unix seconds at the start of the bucket
    value: str
    impressions: int


class ExposureLog:
    """Counts impressions by topic and by creator, split personalised / not."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: Counter[tuple[int, str, str, bool]] = Counter()
        metadata.create_all(engine)

    def record(self, served: Iterable[tuple[str, str]], *, personalised: bool) -> None:
        """Count one impression per served (topic, creator)."""
        bucket = int(self._clock() // BUCKET_S * BUCKET_S)
        with self._lock:
            for topic, creator in served:
                self._pending[bucket, "topic", topic, personalised] += 1
                self._pending[bucket, "creator", creator, personalised] += 1

    def flush(self) -> int:
        """Add the pending counts to the table; returns how many rows changed."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return 0
        with self._engine.begin() as conn:
            for (bucket, dimension, value, personalised), n in pending.items():
                key = (
                    (exposure.c.bucket == bucket) & (exposure.c.dimension == dimension)
                    & (exposure.c.value == value) & (exposure.c.personalised == personalised)
                )  # fmt: skip
                done = conn.execute(
                    exposure.update().where(key).values(impressions=exposure.c.impressions + n)
                ).rowcount
                if not done:
                    conn.execute(exposure.insert().values(
                        bucket=bucket, dimension=dimension, value=value,
                        personalised=personalised, impressions=n,
                    ))  # fmt: skip
        return len(pending)

    def series(
        self, dimension: str, *, since: float = 0.0, personalised: bool | None = None
    ) -> list[Point]:
        """Impressions per bucket and value of one dimension (``topic`` or ``creator``)."""
        if dimension not in DIMENSIONS:
            raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}")
        query = (
            sa.select(exposure.c.bucket, exposure.c.value, sa.func.sum(exposure.c.impressions))
            .where(exposure.c.dimension == dimension, exposure.c.bucket >= since)
            .group_by(exposure.c.bucket, exposure.c.value)
            .order_by(exposure.c.bucket, exposure.c.value)
        )
        if personalised is not None:
            query = query.where(exposure.c.personalised == personalised)
        with self._engine.connect() as conn:
            return [Point(int(b), str(v), int(n)) for b, v, n in conn.execute(query)]

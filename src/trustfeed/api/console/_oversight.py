"""Oversight: what the feeds exposed, by topic and by creator over time.

The counts are the exposure log's (aggregates, no personal data), split
between personalised feeds and the non-personalised one (DSA Art. 38), so an
overseer can see whether personalisation shifts exposure. They lag the feeds
by the pipeline's flush interval.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from trustfeed.api._auth import PlatformDep
from trustfeed.api.console._charts import Chart, Sample, line_chart, stacked_bars
from trustfeed.api.console._render import page
from trustfeed.api.console._session import PREFIX, Refused, Session, needs
from trustfeed.custody import Role
from trustfeed.service import Platform
from trustfeed.service._exposure import BUCKET_S

router = APIRouter(prefix=PREFIX)
Overseer = Annotated[Session, Depends(needs(Role.CUSTODIAN, Role.AUDITOR, Role.OPERATOR))]
Choice = Annotated[str, Query(max_length=32)]
WINDOWS: dict[str, float | None] = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "all": None}
FEEDS: dict[str, bool | None] = {"all": None, "personalised": True, "non-personalised": False}
SPLIT_ROWS = 15


@dataclass(frozen=True)
class SplitRow:
    value: str
    personalised: int
    non_personalised: int

    @property
    def total(self) -> int:
        return self.personalised + self.non_personalised

    @property
    def share(self) -> str:
        """The personalised share, as the page prints it."""
        return f"{100 * self.personalised / self.total:.0f} %" if self.total else "—"


@dataclass(frozen=True)
class Section:
    dimension: str
    chart: Chart | None
    split: list[SplitRow]


def split_rows(personal: Sequence[Sample], plain: Sequence[Sample]) -> list[SplitRow]:
    """Impressions per value in personalised and non-personalised feeds, largest first."""
    mine: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for s in personal:
        mine[s.value] += s.impressions
    for s in plain:
        other[s.value] += s.impressions
    rows = [SplitRow(v, mine[v], other[v]) for v in set(mine) | set(other)]
    return sorted(rows, key=lambda r: (-r.total, r.value))[:SPLIT_ROWS]


def _section(platform: Platform, dimension: str, since: float, feed: bool | None) -> Section:
    exposure = platform.exposure
    shown = exposure.series(dimension, since=since, personalised=feed)
    chart = stacked_bars(shown, step=BUCKET_S, title=dimension.title())
    personal = exposure.series(dimension, since=since, personalised=True)
    plain = exposure.series(dimension, since=since, personalised=False)
    return Section(dimension, chart, split_rows(personal, plain))


def _totals(samples: Sequence[Sample]) -> list[tuple[int, int]]:
    per_bucket: Counter[int] = Counter()
    for s in samples:
        per_bucket[s.bucket] += s.impressions
    return sorted(per_bucket.items())


@router.get("/oversight")
def oversight(
    request: Request, session: Overseer, platform: PlatformDep,
    window: Choice = "24h", feed: Choice = "all",
) -> Response:  # fmt: skip
    """Exposure charts for a time window, with the personalised / non-personalised split."""
    if window not in WINDOWS or feed not in FEEDS:
        raise Refused(400, f"window is one of {', '.join(WINDOWS)}; feed one of {', '.join(FEEDS)}")
    span = WINDOWS[window]
    since = 0.0 if span is None else time.time() - span
    exposure = platform.exposure
    # Each impression counts once per dimension, so the topic series give the feed totals.
    split = line_chart(
        {
            "personalised": _totals(exposure.series("topic", since=since, personalised=True)),
            "non-personalised": _totals(exposure.series("topic", since=since, personalised=False)),
        },
        step=BUCKET_S, title="Personalised and non-personalised feeds",
    )  # fmt: skip
    sections = [_section(platform, d, since, FEEDS[feed]) for d in ("topic", "creator")]
    return page(
        request, "oversight.html", session, split=split, sections=sections,
        window=window, windows=list(WINDOWS), feed=feed, feeds=list(FEEDS),
    )  # fmt: skip

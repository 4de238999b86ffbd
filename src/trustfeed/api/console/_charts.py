"""Small SVG charts computed on the server: stacked bars and lines over time.

Why not a JavaScript chart library: the console loads nothing from outside
and runs no inline script, and two chart kinds are a few dozen lines. This
module only computes geometry; ``templates/_charts.html`` draws it (so every
label passes through the template's escaping), with a data table beside each
chart for screen readers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: Okabe–Ito: told apart by people with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHER_COLOUR = "#8c8c8c"
OTHER = "other"
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 36
MAX_BINS = 36
X_TICKS = 6


class Sample(Protocol):
    """One count at a time bucket (``service._exposure.Point`` has this shape)."""

    @property
    def bucket(self) -> int: ...
    @property
    def value(self) -> str: ...
    @property
    def impressions(self) -> int: ...


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass(frozen=True)
class Line:
    name: str
    colour: str
    points: str  # an SVG polyline's "x,y x,y …"
    dots: tuple[tuple[float, float, str], ...]


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Everything ``_charts.html`` needs to draw one chart and its data table."""

    title: str
    description: str
    legend: list[tuple[str, str]]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    table_head: list[str]
    table_rows: list[list[str]]
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM


@dataclass(frozen=True)
class Bins:
    """Time bins: ``count`` bins of ``width`` seconds from ``start``."""

    start: int
    width: int
    count: int

    @classmethod
    def covering(cls, buckets: Iterable[int], step: int, max_bins: int = MAX_BINS) -> Bins:
        """The fewest whole-``step`` bins (at most ``max_bins``) covering every bucket."""
        seen = sorted(set(buckets))
        start, end = seen[0], seen[-1] + step
        width = step * math.ceil((end - start) / step / max_bins)
        return cls(start, width, math.ceil((end - start) / width))

    def of(self, bucket: int) -> int:
        return min(self.count - 1, (bucket - self.start) // self.width)

    def label(self, index: int) -> str:
        moment = dt.datetime.fromtimestamp(self.start + index * self.width, tz=dt.UTC)
        long_span = self.width * self.count > 2 * 86400
        return moment.strftime("%m-%d %H:%M" if long_span else "%H:%M")


def nice_scale(peak: float, ticks: int = 4) -> tuple[int, int]:
    """A round axis maximum and a whole step (about ``ticks`` of them) for counts up to ``peak``.

    >>> nice_scale(0), nice_scale(7), nice_scale(130), nice_scale(999)
    ((1, 1), (8, 2), (150, 50), (1000, 250))
    """
    peak = max(peak, 1)
    raw = peak / ticks
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(math.ceil(m * magnitude) for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(peak / step), step


def _y_ticks(top: int, step: int) -> list[Tick]:
    return [Tick(_y(v, top), f"{v:,}") for v in range(0, top + 1, step)]


def _y(value: float, top: int) -> float:
    plot = HEIGHT - BOTTOM - TOP
    return round(HEIGHT - BOTTOM - plot * value / top, 1)


def _x_ticks(bins: Bins) -> list[Tick]:
    width = (WIDTH - LEFT - RIGHT) / bins.count
    every = max(1, math.ceil(bins.count / X_TICKS))
    return [Tick(round(LEFT + i * width, 1), bins.label(i)) for i in range(0, bins.count, every)]


def top_values(samples: Sequence[Sample], keep: int) -> list[str]:
    """The ``keep`` values with most impressions (ties by name); the rest become "other"."""
    totals: Counter[str] = Counter()
    for s in samples:
        totals[s.value] += s.impressions
    ranked = sorted(totals, key=lambda v: (-totals[v], v))
    return ranked[:keep]


def stacked_bars(
    samples: Sequence[Sample], *, step: int, title: str, keep: int = 6
) -> Chart | None:
    """Impressions per time bin, stacked by value (the ``keep`` largest plus "other")."""
    if not samples:
        return None
    bins = Bins.covering((s.bucket for s in samples), step)
    named = top_values(samples, keep)
    series = named + ([OTHER] if len({s.value for s in samples}) > len(named) else [])
    grid: defaultdict[tuple[int, str], int] = defaultdict(int)
    for s in samples:
        grid[bins.of(s.bucket), s.value if s.value in named else OTHER] += s.impressions
    colours = {name: _colour(i, name) for i, name in enumerate(series)}
    stacks = [sum(grid[b, name] for name in series) for b in range(bins.count)]
    top, step_y = nice_scale(max(stacks))
    rects = [r for b in range(bins.count) for r in _stack(bins, b, series, grid, colours, top)]
    rows = [
        [bins.label(b), *(f"{grid[b, n]:,}" for n in series), f"{stacks[b]:,}"]
        for b in range(bins.count)
    ]
    return Chart(
        title=title,
        description=f"Stacked bars: impressions per {_duration(bins.width)} by {title.lower()}.",
        legend=[(name, colours[name]) for name in series],
        x_ticks=_x_ticks(bins), y_ticks=_y_ticks(top, step_y),
        table_head=["from (UTC)", *series, "total"], table_rows=rows, rects=rects,
    )  # fmt: skip


def _stack(
    bins: Bins,
    index: int,
    series: list[str],
    grid: dict[tuple[int, str], int],
    colours: dict[str, str],
    top: int,
) -> list[Rect]:
    slot = (WIDTH - LEFT - RIGHT) / bins.count
    x, width = round(LEFT + index * slot + slot * 0.1, 1), round(slot * 0.8, 1)
    out, below = [], 0
    for name in series:
        n = grid.get((index, name), 0)
        if n:
            y0, y1 = _y(below, top), _y(below + n, top)
            label = f"{name}: {n:,} impressions from {bins.label(index)}"
            out.append(Rect(x, y1, width, round(y0 - y1, 1), colours[name], label))
            below += n
    return out


def line_chart(
    series: dict[str, Sequence[tuple[int, int]]], *, step: int, title: str
) -> Chart | None:
    """One line per named series of (bucket, count) pairs, on shared time bins."""
    buckets = [b for points in series.values() for b, _ in points]
    if not buckets:
        return None
    bins = Bins.covering(buckets, step)
    binned = {name: _binned(points, bins) for name, points in series.items()}
    top, step_y = nice_scale(max(max(v) for v in binned.values()))
    slot = (WIDTH - LEFT - RIGHT) / bins.count
    lines = []
    for i, (name, values) in enumerate(binned.items()):
        xy = [(round(LEFT + (b + 0.5) * slot, 1), _y(v, top)) for b, v in enumerate(values)]
        dots = tuple((x, y, f"{name}: {v:,} from {bins.label(b)}") for b, ((x, y), v)
                     in enumerate(zip(xy, values, strict=True)))  # fmt: skip
        lines.append(
            Line(name, PALETTE[i % len(PALETTE)], " ".join(f"{x},{y}" for x, y in xy), dots)
        )
    rows = [[bins.label(b), *(f"{binned[n][b]:,}" for n in binned)] for b in range(bins.count)]
    return Chart(
        title=title,
        description=f"Lines: impressions per {_duration(bins.width)}, {', '.join(series)}.",
        legend=[(line.name, line.colour) for line in lines],
        x_ticks=_x_ticks(bins), y_ticks=_y_ticks(top, step_y),
        table_head=["from (UTC)", *series], table_rows=rows, lines=lines,
    )  # fmt: skip


def _binned(points: Sequence[tuple[int, int]], bins: Bins) -> list[int]:
    out = [0] * bins.count
    for bucket, n in points:
        out[bins.of(bucket)] += n
    return out


def _colour(index: int, name: str) -> str:
    return OTHER_COLOUR if name == OTHER else PALETTE[index % len(PALETTE)]


def _duration(seconds: int) -> str:
    """
    >>> _duration(60), _duration(7200), _duration(86400)
    ('1 min', '2 h', '1 d')
    """
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds // 60} min"

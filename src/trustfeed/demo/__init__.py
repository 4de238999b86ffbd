"""``trustfeed demo``: the whole platform on a generated world (see :mod:`._cli`)."""

from trustfeed.demo._cli import POSITIVE_WATCH_RATIO, demo, positives

__all__ = ["POSITIVE_WATCH_RATIO", "demo", "positives"]

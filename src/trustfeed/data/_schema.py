"""The one interaction schema every part of trustfeed reads.

Required columns: ``user_id`` (int64), ``item_id`` (int64), ``timestamp``
(float64, seconds since the Unix epoch; sequence datasets without real time
use the position in the user's sequence). Optional columns:

=================  =========  ==============================================
column             dtype      meaning
=================  =========  ==============================================
``event``          category   one of :data:`EVENTS`; absent = ``view``
``watch_ms``       float64    how long the video was watched
``duration_ms``    float64    the video's length
``value``          float64    explicit value (a rating, a weight)
=================  =========  ==============================================

Item metadata (optional, one row per item): ``item_id`` plus ``creator_id``
(int64), ``topic`` (str), ``duration_ms`` (float64), ``published_at``
(float64 seconds).
"""

from __future__ import annotations

from trustfeed.errors import TrustfeedError

REQUIRED_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "timestamp")
OPTIONAL_COLUMNS: dict[str, str] = {
    "event": "category",
    "watch_ms": "float64",
    "duration_ms": "float64",
    "value": "float64",
}
EVENTS: tuple[str, ...] = ("view", "like", "share", "follow", "comment", "skip", "hate")
#: Events that say the user did not want the item.
NEGATIVE_EVENTS: frozenset[str] = frozenset({"skip", "hate"})

ITEM_COLUMNS: dict[str, str] = {
    "item_id": "int64",
    "creator_id": "int64",
    "topic": "str",
    "duration_ms": "float64",
    "published_at": "float64",
}


class DataError(TrustfeedError, ValueError):
    """Input data that does not fit the schema; names the source and the line."""

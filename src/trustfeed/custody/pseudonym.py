"""The pseudonymised training stream: what leaves the custodian for the trainer.

Events in the interaction schema go out with ``user_id`` and ``item_id``
replaced by keyed pseudonyms and every other column dropped unless it is on
an explicit allow-list; events whose residency is not domestic are refused.

Why integers: the recommender's collisionless embedding tables key on int64.
A pseudonym is the first 63 bits of ``HMAC-SHA256(key_v, domain ‖ id)``, so it
is non-negative in an int64, stable for a key version, different across
versions, and not reversible without the key (which never leaves the
custodian; no mapping table is produced). Collision odds for ``n`` distinct
ids are about ``n² / 2⁶⁴``: 5·10⁻⁸ for a million users, 5·10⁻⁴ for a hundred
million. A batch that does collide is refused rather than silently merging
two users' vectors. Users and items hash in separate domains.

Erasure: the custodian recomputes a user's pseudonym from their raw id with
:meth:`PseudonymStream.user` (one stream per key version a model was trained
under) and removes that row from the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trustfeed.custody._errors import CustodyError
from trustfeed.custody._keyed import KeyedHasher
from trustfeed.data._schema import EVENTS

#: Columns that may leave, besides the pseudonymised ids: the schema's own
#: allowable fields. Anything else (location, query, message, contact, unknown) is dropped.
ALLOWED_COLUMNS: tuple[str, ...] = ("timestamp", "event", "watch_ms", "duration_ms", "value")
_NUMERIC = ("timestamp", "watch_ms", "duration_ms", "value")
RESIDENCY_COLUMN = "residency"
PSEUDONYM_BITS = 63
_USER_DOMAIN = "trustfeed.pseudonym.user\x1f"
_ITEM_DOMAIN = "trustfeed.pseudonym.item\x1f"


class PseudonymError(CustodyError):
    """Events that cannot leave the custodian as they are."""


class ResidencyError(PseudonymError):
    """Events that are not (or not known to be) domestic; they never leave for training."""


@dataclass(frozen=True)
class PseudonymBatch:
    """One batch for the trainer, with the key version its pseudonyms are under."""

    frame: pd.DataFrame
    key_version: int
    dropped_columns: tuple[str, ...]

    def manifest(self) -> dict[str, Any]:
        """What the lineage record needs about this batch (no ids, no key material)."""
        return {
            "pseudonym_key_version": self.key_version,
            "rows": len(self.frame),
            "columns": list(self.frame.columns),
            "dropped_columns": list(self.dropped_columns),
        }


class PseudonymStream:
    """Turns raw events into trainer-ready, pseudonymous, domestic-only events.

    ``domestic`` is the jurisdiction code events must reside in (the
    ``TRUSTFEED_DOMESTIC`` setting); ``version`` picks a key version of the
    hasher (default: its current one) and is recorded with every batch.

    >>> stream = PseudonymStream(KeyedHasher({1: bytes(32)}, current=1), domestic="US")
    >>> stream.user("42") == stream.user(42) != stream.item(42)
    True
    """

    def __init__(self, hasher: KeyedHasher, *, domestic: str, version: int | None = None) -> None:
        if not domestic:
            raise PseudonymError("the domestic jurisdiction must be named")
        self._hasher = hasher
        self.domestic = domestic
        self.key_version = hasher.current if version is None else version
        hasher.digest("", version=self.key_version)  # fails now, clearly, if the key is missing

    def user(self, user_id: object) -> int:
        """The user's pseudonym: what erasure removes from the model."""
        return self._pseudonym(_USER_DOMAIN, user_id)

    def item(self, item_id: object) -> int:
        return self._pseudonym(_ITEM_DOMAIN, item_id)

    def events(self, events: pd.DataFrame, *, residency: str | None = None) -> PseudonymBatch:
        """Pseudonymise one batch; ``residency`` names the partition's when no column does.

        1. Refuse the batch unless every event is known to be domestic: per
           event from a ``residency`` column if there is one, else from the
           partition's ``residency``; unknown residency is refused.
        2. Keep only the allow-listed columns, each checked to hold what the
           schema says (numbers, known event names), so nothing free-form rides along.
        3. Replace user and item ids by pseudonyms, refusing a batch in which
           two distinct ids would share one.
        """
        for column in ("user_id", "item_id"):
            if column not in events.columns:
                raise PseudonymError(f"events have no {column!r} column")
        self._check_residency(events, residency)
        kept = [c for c in ALLOWED_COLUMNS if c in events.columns]
        if "timestamp" not in kept:
            raise PseudonymError("events have no 'timestamp' column")
        out = pd.DataFrame(
            {
                "user_id": self._column(_USER_DOMAIN, events["user_id"], "user"),
                "item_id": self._column(_ITEM_DOMAIN, events["item_id"], "item"),
            }
        )
        for column in kept:
            # Values only: the input's index (which might be raw ids) never leaves.
            out[column] = _checked(column, events[column]).reset_index(drop=True)
        dropped = tuple(str(c) for c in events.columns if c not in {"user_id", "item_id", *kept})
        return PseudonymBatch(out, self.key_version, dropped)

    def _pseudonym(self, domain: str, raw: object) -> int:
        digest = self._hasher.digest(domain + _text(raw), version=self.key_version)
        mac = digest.partition(":")[2]
        return int(mac[:16], 16) >> (64 - PSEUDONYM_BITS)

    def _column(self, domain: str, values: pd.Series, what: str) -> np.ndarray:
        if values.isna().any():
            raise PseudonymError(f"events with a missing {what} id cannot be pseudonymised")
        codes, uniques = pd.factorize(values, sort=False)
        mapped = np.fromiter(
            (self._pseudonym(domain, raw) for raw in uniques), dtype=np.int64, count=len(uniques)
        )
        if len(np.unique(mapped)) != len(mapped):
            raise PseudonymError(
                f"two distinct {what} ids share a pseudonym under key version "
                f"{self.key_version}; rotate the pseudonym key"
            )
        return mapped[codes]

    def _check_residency(self, events: pd.DataFrame, residency: str | None) -> None:
        if RESIDENCY_COLUMN in events.columns:
            column = events[RESIDENCY_COLUMN]
            foreign = column.isna() | (column.astype(str) != self.domestic)
            if foreign.any():
                raise ResidencyError(
                    f"{int(foreign.sum())} of {len(events)} events are not resident in "
                    f"{self.domestic}; non-domestic data never leaves for training"
                )
        elif residency is None:
            raise ResidencyError(
                "residency unknown: pass the partition's residency or a 'residency' column"
            )
        elif residency != self.domestic:
            raise ResidencyError(
                f"partition residency {residency!r} is not {self.domestic!r}; "
                "non-domestic data never leaves for training"
            )


def pseudonymise_events(
    events: pd.DataFrame,
    hasher: KeyedHasher,
    *,
    domestic: str,
    residency: str | None = None,
    version: int | None = None,
) -> PseudonymBatch:
    """One-shot form of :meth:`PseudonymStream.events`."""
    stream = PseudonymStream(hasher, domestic=domestic, version=version)
    return stream.events(events, residency=residency)


def _text(raw: object) -> str:
    # One canonical text per id: numpy and Python integers (and "42") agree.
    if isinstance(raw, np.integer | int) and not isinstance(raw, bool):
        return str(int(raw))
    if isinstance(raw, str):
        return raw
    raise PseudonymError(f"ids must be integers or strings, not {type(raw).__name__}")


def _checked(column: str, values: pd.Series) -> pd.Series:
    if column == "event":
        text = values.astype("string")
        unknown = ~text.isin(EVENTS) & text.notna()
        if unknown.any():
            count = int(unknown.sum())
            raise PseudonymError(f"'event' holds {count} values that are not schema events")
        return text.astype(pd.CategoricalDtype(list(EVENTS)))
    try:
        return pd.to_numeric(values, errors="raise").astype("float64")
    except (ValueError, TypeError) as exc:
        raise PseudonymError(f"column {column!r} must be numeric") from exc

"""App events as the service accepts them, and their form in the durable log.

The same pydantic model validates the HTTP body and decodes the log, so an
event the log holds is always one the API would have accepted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from trustfeed.data import EVENTS

EventName = Literal["view", "like", "share", "follow", "comment", "skip", "hate"]
assert set(EventName.__args__) == set(EVENTS)  # type: ignore[attr-defined]  # one vocabulary

MAX_BATCH = 1000
_ID = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$"


class Event(BaseModel):
    """One thing a user did with a video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idempotency_key: str = Field(
        min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$",
        description="Unique per event; a retry with the same key is accepted once.",
    )  # fmt: skip
    user_id: str = Field(pattern=_ID, description="The app's user id (personal data).")
    item_id: int = Field(ge=0, lt=2**62, description="The video's public id.")
    event: EventName = "view"
    timestamp: float = Field(gt=0, lt=1e11, description="Unix seconds when it happened.")
    watch_ms: int | None = Field(None, ge=0, le=86_400_000)
    duration_ms: int | None = Field(None, gt=0, le=86_400_000)
    residency: str | None = Field(
        None, pattern=r"^[A-Z]{2}$", description="Where the user's data belongs; default domestic."
    )

    def payload(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class EventBatch(BaseModel):
    """A batch of events, ingested in order."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH)


def decode(payload: bytes) -> Event:
    return Event.model_validate_json(payload)


def to_frame(events: Sequence[Event], *, domestic: str) -> pd.DataFrame:
    """The events as an interaction frame (raw ids; pseudonymise before training)."""
    rows = [json.loads(e.payload()) for e in events]
    frame = pd.DataFrame(rows)
    if "residency" in frame:
        frame["residency"] = frame["residency"].fillna(domestic)
    else:
        frame["residency"] = domestic
    frame = frame.drop(columns=["idempotency_key"])
    for column in ("watch_ms", "duration_ms"):
        if column in frame:
            frame[column] = frame[column].astype("float64")
    return frame

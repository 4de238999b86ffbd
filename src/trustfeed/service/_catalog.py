"""The catalogue of uploaded videos: public metadata, and each item's model pseudonym.

The model knows items only by their keyed pseudonyms (the training stream
pseudonymises both ids); serving maps them back to public item ids here.
Lookups are served from memory; the table is the durable copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from trustfeed.service import _tables as t
from trustfeed.service._errors import Conflict, NotFound


@dataclass(frozen=True)
class CatalogItem:
    """One uploaded video's public metadata."""

    item_id: int
    pseudonym: int
    creator_id: str
    topic: str
    duration_ms: int
    caption: str
    media_type: str
    uploaded_at: float

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("pseudonym")  # the model's key is the custodian's business, not the app's
        return out


class Catalog:
    """Durable item metadata with an in-memory pseudonym → item map."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._lock = threading.Lock()
        t.metadata.create_all(engine, tables=[t.catalog])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(t.catalog)).all()
        rows = sorted(rows, key=lambda r: (r.uploaded_at, r.item_id))
        self._items = {row.item_id: _item(row) for row in rows}
        self._by_pseudonym = {item.pseudonym: item.item_id for item in self._items.values()}
        self._creators: dict[str, int] = {}
        for item in self._items.values():
            self._creators.setdefault(item.creator_id, len(self._creators))

    def add(self, item: CatalogItem) -> CatalogItem:
        """Record a new upload; an item id is uploaded once (409 on a repeat)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(t.catalog.insert(), asdict(item))
        except IntegrityError as exc:
            raise Conflict(f"item {item.item_id} was already uploaded") from exc
        self._remember([item])
        return item

    def add_many(self, items: Sequence[CatalogItem]) -> None:
        """Record many new uploads in one transaction; one repeat refuses them all (409)."""
        if not items:
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(t.catalog.insert(), [asdict(i) for i in items])
        except IntegrityError as exc:
            raise Conflict("an item in the batch was already uploaded") from exc
        self._remember(items)

    def _remember(self, items: Iterable[CatalogItem]) -> None:
        with self._lock:
            for item in items:
                self._items[item.item_id] = item
                self._by_pseudonym[item.pseudonym] = item.item_id
                self._creators.setdefault(item.creator_id, len(self._creators))

    def creator_index(self, creator_id: str) -> int:
        """A small dense number per creator, in order of first upload (the model's creator key).

        Why not a pseudonym: the model indexes follows and per-creator caps by
        creator number, so the numbers must stay small.
        """
        return self._creators[creator_id]

    def get(self, item_id: int) -> CatalogItem:
        item = self._items.get(item_id)
        if item is None:
            raise NotFound(f"no item {item_id}")
        return item

    def duration_ms(self, item_id: int) -> float:
        """The item's length, or NaN for an item never uploaded here."""
        item = self._items.get(item_id)
        return float("nan") if item is None else float(item.duration_ms)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[CatalogItem]:
        return list(self._items.values())

    def item_ids(self, pseudonyms: Iterable[int]) -> list[int | None]:
        """Public ids for model pseudonyms (None for one the catalogue never issued)."""
        return [self._by_pseudonym.get(int(p)) for p in pseudonyms]

    def pseudonyms(self, item_ids: Iterable[int]) -> np.ndarray:
        return np.array([self._items[i].pseudonym for i in item_ids], np.int64)


def _item(row: sa.Row) -> CatalogItem:
    return CatalogItem(
        row.item_id, row.pseudonym, row.creator_id, row.topic, row.duration_ms,
        row.caption, row.media_type, row.uploaded_at,
    )  # fmt: skip

"""What runs behind ingest: the durable log feeds the vault and the live model.

* :class:`Archiver` seals each user's events of a log batch into one vault
  record; the batch's log position commits in the same transaction, so a
  crash neither loses nor repeats a batch.
* :class:`Trainer` pseudonymises domestic events (one policy decision per
  batch, in the ledger) and folds them into the live model; the model is
  snapshotted with the log position it reflects, and a restart replays the
  log from there, so no event is counted twice.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from trustfeed.custody import AccessRequest, Action, DataClass, Principal, Resource
from trustfeed.custody.pseudonym import PseudonymStream
from trustfeed.custody.vault import Vault
from trustfeed.custody.vault._requests import record_request
from trustfeed.recommend import Recommender
from trustfeed.service._catalog import Catalog
from trustfeed.service._events import Event, decode, to_frame
from trustfeed.stream import EventLog

log = logging.getLogger(__name__)

PURPOSE_INGEST = "ingest"
PURPOSE_TRAINING = "training"

_positions = sa.Table(
    "service_positions",
    sa.MetaData(),
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("offset", sa.BigInteger, nullable=False),
)


class Archiver:
    """Log → vault (purpose ``ingest``), position kept in the vault's own store."""

    consumer = "vault"

    def __init__(
        self,
        log_: EventLog,
        vault: Vault,
        engine: sa.Engine,
        *,
        principal: Principal,
        domestic: str,
    ) -> None:
        self._log, self._vault, self._engine = log_, vault, engine
        self._principal, self._domestic = principal, domestic
        _positions.metadata.create_all(engine)
        self.position = self._stored_position()

    def _stored_position(self) -> int:
        with self._engine.connect() as conn:
            query = sa.select(_positions.c.offset).where(_positions.c.consumer == self.consumer)
            return int(conn.execute(query).scalar_one_or_none() or 0)

    def step(self, limit: int = 10_000) -> int:
        """Archive the next batch; return how many events it held."""
        records = self._log.read(self.position, limit)
        if not records:
            return 0
        by_user: dict[tuple[str, str], list[tuple[int, Event]]] = defaultdict(list)
        for record in records:
            event = decode(record.payload)
            by_user[event.user_id, event.residency or self._domestic].append((record.offset, event))
        writes = [self._write(user, residency, rows) for (user, residency), rows in by_user.items()]
        last = records[-1].offset
        self._vault.put_many(
            writes, media_type="application/x-ndjson", in_transaction=self._save_position(last)
        )
        self.position = last
        return len(records)

    def _write(
        self, user: str, residency: str, rows: list[tuple[int, Event]]
    ) -> tuple[AccessRequest, bytes]:
        request = record_request(
            self._principal, Action.WRITE, owner=user,
            record_id=f"events/{rows[0][0]}-{rows[-1][0]}",
            data_class=DataClass.WATCH_HISTORY, residency=residency, purpose=PURPOSE_INGEST,
        )  # fmt: skip
        lines = (json.dumps(e.model_dump(exclude_none=True), sort_keys=True) for _, e in rows)
        return request, ("\n".join(lines) + "\n").encode()

    def _save_position(self, offset: int) -> Callable[[sa.Connection], None]:
        def save(conn: sa.Connection) -> None:
            updated = conn.execute(
                _positions.update()
                .where(_positions.c.consumer == self.consumer)
                .values(offset=offset)
            ).rowcount
            if not updated:
                conn.execute(_positions.insert().values(consumer=self.consumer, offset=offset))

        return save


class Trainer:
    """Log → pseudonymous training stream → live model (purpose ``training``)."""

    def __init__(
        self,
        log_: EventLog,
        model: Recommender,
        *,
        position: int,
        pseudonyms: PseudonymStream,
        decide: Callable[[AccessRequest], object],
        principal: Principal,
        catalog: Catalog,
        is_erased: Callable[[str], bool],
        lock: threading.RLock,
    ) -> None:
        self._log, self.model, self.position = log_, model, position
        self._pseudonyms, self._decide, self._principal = pseudonyms, decide, principal
        self._catalog, self._is_erased, self._lock = catalog, is_erased, lock
        self._erased: dict[str, bool] = {}
        self.applied = 0
        self.skipped_foreign = 0
        self.last_applied_at = 0.0

    def forget(self, user_id: str) -> None:
        """An erased user's events still in the log are never trained on again."""
        self._erased[user_id] = True

    def step(self, limit: int = 10_000) -> int:
        """Train on the next batch; return how many log records it consumed."""
        records = self._log.read(self.position, limit)
        if not records:
            return 0
        events = [decode(r.payload) for r in records]
        events = [e for e in events if not self._erased_user(e.user_id)]
        domestic = self._pseudonyms.domestic
        kept = [e for e in events if (e.residency or domestic) == domestic]
        self.skipped_foreign += len(events) - len(kept)
        with self._lock:  # a snapshot must never see the batch without its position
            if kept:
                self._train(kept, records[0].offset, records[-1].offset)
            self.position = records[-1].offset
            self.applied += len(kept)
        self.last_applied_at = time.time()
        return len(records)

    def _erased_user(self, user_id: str) -> bool:
        known = self._erased.get(user_id)
        if known is None:
            known = self._erased[user_id] = self._is_erased(user_id)
        return known

    def _train(self, events: list[Event], first: int, last: int) -> None:
        domestic = self._pseudonyms.domestic
        resource = Resource(f"training/log/{first}-{last}", DataClass.PSEUDONYMOUS_EVENTS, domestic)
        self._decide(AccessRequest(self._principal, Action.TRAIN, resource, PURPOSE_TRAINING))
        frame = to_frame(events, domestic=domestic)
        self._fill_durations(frame)
        batch = self._pseudonyms.events(frame)
        self.model.partial_fit(batch.frame)

    def _fill_durations(self, frame: pd.DataFrame) -> None:
        """Watch ratios need the video's length: the catalogue knows it when the app didn't say."""
        durations = frame["item_id"].map(self._catalog.duration_ms)
        if "duration_ms" in frame:
            frame["duration_ms"] = frame["duration_ms"].fillna(durations)
        else:
            frame["duration_ms"] = durations
        if frame["duration_ms"].isna().all():
            frame.drop(columns=["duration_ms"], inplace=True)


def save_snapshot(model: Recommender, position: int, directory: Path) -> None:
    """Write the model and the log position it reflects; the old snapshot stays until done."""
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        _remove_tree(tmp)
    model.save(tmp / "model")
    (tmp / "position").write_text(str(position), encoding="utf-8")
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        if old.exists():  # a kill during an earlier clean-up left it half deleted
            _remove_tree(old)
        directory.rename(old)
    tmp.rename(directory)
    if old.exists():
        _remove_tree(old)


def load_snapshot(directory: Path) -> tuple[Recommender, int] | None:
    """The last complete snapshot, if any (a half-written one is ignored)."""
    for candidate in (directory, directory.with_name(directory.name + ".old")):
        if (candidate / "position").exists():
            position = int((candidate / "position").read_text(encoding="utf-8"))
            return Recommender.load(candidate / "model"), position
    return None


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path)

"""Hash banks: named lists of known media, matched against uploads and published items.

A bank has its own PDQ distance threshold, can be disabled (now, or until a
time), and is either positive (a match restricts the item with the bank's
action) or negative (an allow-list: any match there suppresses every positive
match, for well-known benign images that collide with bad ones). Contents live
in SQL; the PDQ index is rebuilt from those rows, never pickled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from trustfeed.moderation import _tables as t
from trustfeed.moderation._bank_rules import MatchResult, Switchable
from trustfeed.moderation._errors import ModerationError, UnknownBank
from trustfeed.moderation._gate import Clock, Gate, Verdict
from trustfeed.moderation._index import BruteForceIndex, HammingIndex, build_index
from trustfeed.moderation._media import SIGNAL_TYPES, hash_media, signal_type
from trustfeed.moderation._pdq import PDQSignal, hex_to_bytes
from trustfeed.moderation._signals import SignalValue
from trustfeed.moderation._status import SEVERITY, Actor, Status

_PDQ = PDQSignal()
#: New entries searched by brute force until there are this many; then the index is rebuilt.
_DELTA_LIMIT = 4096


@dataclass(frozen=True)
class Bank(Switchable):
    """A bank's settings (its contents are rows of ``moderation_bank_entries``)."""

    name: str
    negative: bool
    action: Status
    pdq_threshold: int
    enabled: bool
    disable_until: float | None


@dataclass(frozen=True)
class BankMatch:
    """One bank entry an upload's signal matched, and how closely."""

    bank: str
    signal: str
    entry_id: int
    value: str
    distance: int
    variant: int


@dataclass(frozen=True)
class RescanReport:
    """What adding one hash did to already published items."""

    entry_id: int
    matched: list[int]
    suppressed: list[int]
    moved: list[int]
    seconds: float


class _PDQEntries:
    """PDQ bank entries in memory: an index over most, brute force over the newest."""

    def __init__(self) -> None:
        self.last_id = 0
        self.values: dict[int, tuple[str, str]] = {}  # entry id → (bank, hex)
        self._indexed: HammingIndex = BruteForceIndex(np.zeros((0, 32), np.uint8), np.zeros(0))
        self._delta_ids: list[int] = []
        self._delta_hex: list[str] = []

    def load(self, conn: sa.Connection) -> None:
        """Read entries added since the last load (cheap when there are none)."""
        query = (
            sa.select(t.bank_entries.c.id, t.bank_entries.c.bank, t.bank_entries.c.value)
            .where(t.bank_entries.c.signal == _PDQ.name, t.bank_entries.c.id > self.last_id)
            .order_by(t.bank_entries.c.id)
        )
        for entry_id, bank, value in conn.execute(query):
            self.values[int(entry_id)] = (bank, value)
            self._delta_ids.append(int(entry_id))
            self._delta_hex.append(value)
            self.last_id = int(entry_id)
        if len(self._delta_ids) >= _DELTA_LIMIT:
            ids = np.fromiter(self.values, np.int64)
            self._indexed = build_index(hex_to_bytes([self.values[i][1] for i in ids]), ids)
            self._delta_ids, self._delta_hex = [], []

    def search(self, query: np.ndarray, radius: int) -> list[tuple[int, int]]:
        """(entry id, distance) of every entry within ``radius``."""
        delta = BruteForceIndex(hex_to_bytes(self._delta_hex), np.array(self._delta_ids, np.int64))
        found: list[tuple[int, int]] = []
        for index in (self._indexed, delta):
            hits = index.search(query, radius)
            found += zip(hits.ids.tolist(), hits.distances.tolist(), strict=True)
        return found


class Banks:
    """Bank settings and contents in SQL, matching, and re-scans on add."""

    def __init__(self, engine: sa.Engine, *, gate: Gate, clock: Clock = time.time) -> None:
        self._engine = engine
        self._gate = gate
        self._clock = clock
        self._pdq = _PDQEntries()
        t.metadata.create_all(engine)

    # ------------------------------------------------------------------ settings
    def create(
        self,
        name: str,
        *,
        action: Status = Status.QUARANTINED,
        pdq_threshold: int = PDQSignal.threshold,
        negative: bool = False,
        enabled: bool = True,
    ) -> Bank:
        """Create a bank; positive banks move matches to ``action`` (a restriction)."""
        action = Status(action)
        if action in (Status.PENDING, Status.ELIGIBLE):
            raise ModerationError(f"a bank's action must restrict the item, not {action}")
        if not 0 <= pdq_threshold <= 128:
            raise ModerationError(f"PDQ threshold must be 0..128 bits, got {pdq_threshold}")
        row = {
            "name": name,
            "negative": negative,
            "action": action,
            "enabled": enabled,
            "pdq_threshold": pdq_threshold,
            "disable_until": None,
            "created_at": self._clock(),
        }
        with self._engine.begin() as conn:
            if self._bank(conn, name) is not None:
                raise ModerationError(f"bank {name!r} already exists")
            conn.execute(t.banks.insert().values(**row))
        return self.get(name)

    def get(self, name: str) -> Bank:
        """The bank called ``name``; :class:`UnknownBank` if there is none."""
        with self._engine.connect() as conn:
            return self._require(conn, name)

    def all(self) -> list[Bank]:
        """Every bank, by name."""
        with self._engine.connect() as conn:
            return [_bank(r) for r in conn.execute(sa.select(t.banks).order_by(t.banks.c.name))]

    def set_enabled(self, name: str, enabled: bool, *, disable_until: float | None = None) -> Bank:
        """Switch a bank on or off; ``disable_until`` pauses it until that time."""
        with self._engine.begin() as conn:
            self._require(conn, name)
            conn.execute(
                t.banks.update()
                .where(t.banks.c.name == name)
                .values(enabled=enabled, disable_until=disable_until)
            )
        return self.get(name)

    @staticmethod
    def _bank(conn: sa.Connection, name: str) -> Bank | None:
        row = conn.execute(sa.select(t.banks).where(t.banks.c.name == name)).first()
        return None if row is None else _bank(row)

    def _require(self, conn: sa.Connection, name: str) -> Bank:
        bank = self._bank(conn, name)
        if bank is None:
            raise UnknownBank(f"no bank named {name!r}")
        return bank

    # ------------------------------------------------------------------ contents
    def add(self, name: str, signal: str, value: str, *, note: str = "") -> RescanReport:
        """Add one hash to a bank, then re-scan published items against it.

        The re-scan is synchronous (a few hundred ms per million stored
        hashes), so the new hash takes effect before ``add`` returns.
        """
        value = signal_type(signal).validate(value)
        with self._engine.begin() as conn:
            bank = self._require(conn, name)
            row = {"bank": name, "signal": signal, "value": value, "note": note[:200]}
            done = conn.execute(t.bank_entries.insert().values(**row, added_at=self._clock()))
            key: Any = done.inserted_primary_key
        return self._rescan(bank, int(key[0]), signal, value)

    def store_signals(self, item_id: int, values: Sequence[SignalValue]) -> None:
        """Keep an item's signals so later bank additions can re-scan it."""
        rows = [
            {
                "item_id": item_id,
                "signal": v.signal,
                "variant": v.variant,
                "value": v.value,
                "quality": v.quality,
            }
            for v in values
        ]
        with self._engine.begin() as conn:
            conn.execute(t.item_signals.delete().where(t.item_signals.c.item_id == item_id))
            if rows:
                conn.execute(t.item_signals.insert(), rows)

    def item_signals(self, item_id: int) -> list[SignalValue]:
        """The signals stored for an item (empty if it was never hashed)."""
        query = sa.select(t.item_signals).where(t.item_signals.c.item_id == item_id)
        with self._engine.connect() as conn:
            return [
                SignalValue(r.signal, r.value, int(r.variant), r.quality)
                for r in conn.execute(
                    query.order_by(t.item_signals.c.signal, t.item_signals.c.variant)
                )
            ]

    # ------------------------------------------------------------------ matching
    def match(self, values: Sequence[SignalValue]) -> MatchResult[BankMatch]:
        """Match one item's signals against every active bank.

        PDQ values below the quality floor are skipped; the threshold is each
        bank's own; a match in any active negative bank suppresses the rest.
        """
        now = self._clock()
        with self._engine.connect() as conn:
            banks = {b.name: b for b in (_bank(r) for r in conn.execute(sa.select(t.banks)))}
            active = {n: b for n, b in banks.items() if b.active(now)}
            found = self._exact(conn, values, active) if active else []
            if active:
                self._pdq.load(conn)
        found += self._perceptual(values, active)
        split = MatchResult.split(found, lambda m: active[m.bank].negative)
        return MatchResult(_best_per_entry(split.matches), _best_per_entry(split.suppressed_by))

    @staticmethod
    def _exact(
        conn: sa.Connection, values: Sequence[SignalValue], active: dict[str, Bank]
    ) -> list[BankMatch]:
        exact = {(v.signal, v.value): v for v in values if SIGNAL_TYPES[v.signal].threshold == 0}
        if not exact:
            return []
        e = t.bank_entries.c
        query = sa.select(e.id, e.bank, e.signal, e.value).where(
            sa.tuple_(e.signal, e.value).in_(list(exact)), e.bank.in_(list(active))
        )
        return [
            BankMatch(bank, signal, int(i), value, 0, exact[(signal, value)].variant)
            for i, bank, signal, value in conn.execute(query)
        ]

    def _perceptual(
        self, values: Sequence[SignalValue], active: dict[str, Bank]
    ) -> list[BankMatch]:
        usable = [
            v for v in values if v.signal == _PDQ.name and (v.quality or 0) >= _PDQ.min_quality
        ]
        if not usable or not active:
            return []
        radius = max(b.pdq_threshold for b in active.values())
        found = []
        for v in usable:
            query = hex_to_bytes([v.value])[0]
            for entry_id, distance in self._pdq.search(query, radius):
                bank, value = self._pdq.values[entry_id]
                if bank in active and distance <= active[bank].pdq_threshold:
                    found.append(BankMatch(bank, v.signal, entry_id, value, distance, v.variant))
        return found

    # ------------------------------------------------------------------ re-scan
    def _rescan(self, bank: Bank, entry_id: int, signal: str, value: str) -> RescanReport:
        """Steps: (1) find stored items matching the new hash at the bank's threshold;
        (2) drop those an active negative bank allows; (3) escalate the rest
        through the gate, recorded as the bank's rule."""
        start = time.perf_counter()
        if bank.negative or not bank.active(self._clock()):
            return RescanReport(entry_id, [], [], [], time.perf_counter() - start)
        matched = self._items_matching(signal, value, bank.pdq_threshold)
        suppressed = [i for i in matched if self.match(self.item_signals(i)).suppressed_by]
        to_move = [i for i in matched if i not in set(suppressed)]
        reason = f"re-scan: bank {bank.name} entry {entry_id} ({signal}) matched"
        moved = self._gate.escalate(
            to_move, bank.action, reason=reason, actor=Actor("rule", f"bank:{bank.name}")
        )
        elapsed = time.perf_counter() - start
        return RescanReport(entry_id, matched, suppressed, [m.item_id for m in moved], elapsed)

    def _items_matching(self, signal: str, value: str, threshold: int) -> list[int]:
        s = t.item_signals.c
        query = sa.select(s.item_id, s.value).where(s.signal == signal)
        if signal == _PDQ.name:
            query = query.where(s.quality >= _PDQ.min_quality)
        else:
            query = query.where(s.value == value)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        if signal != _PDQ.name:
            return sorted({int(r[0]) for r in rows})
        ids = np.array([r[0] for r in rows], np.int64)
        index = BruteForceIndex(hex_to_bytes([r[1] for r in rows]), ids)
        return sorted(set(index.search(hex_to_bytes([value])[0], threshold).ids.tolist()))


def _bank(row: sa.Row[Any]) -> Bank:
    m: Any = row._mapping
    until = m["disable_until"]
    return Bank(
        m["name"],
        bool(m["negative"]),
        Status(m["action"]),
        int(m["pdq_threshold"]),
        bool(m["enabled"]),
        None if until is None else float(until),
    )


def _best_per_entry(matches: list[BankMatch]) -> list[BankMatch]:
    """One match per bank entry: the closest variant."""
    best: dict[int, BankMatch] = {}
    for m in matches:
        if m.entry_id not in best or m.distance < best[m.entry_id].distance:
            best[m.entry_id] = m
    return sorted(best.values(), key=lambda m: (m.distance, m.entry_id))


class HashMatchScreener:
    """The screening step that hashes an upload, stores its signals and matches banks."""

    name = "hash-match"

    def __init__(
        self, banks: Banks, hasher: Callable[[bytes], list[SignalValue]] = hash_media
    ) -> None:
        self._banks = banks
        self._hasher = hasher

    def screen(self, item_id: int, media: bytes) -> Verdict | None:
        values = self._hasher(media)
        self._banks.store_signals(item_id, values)
        hits = self._banks.match(values).actionable
        if not hits:
            return None
        banks = {b.name: b for b in self._banks.all()}
        worst = max(hits, key=lambda m: SEVERITY[banks[m.bank].action])
        reason = (
            f"bank {worst.bank} entry {worst.entry_id} ({worst.signal}, distance {worst.distance})"
        )
        return Verdict(banks[worst.bank].action, reason, Actor("rule", f"bank:{worst.bank}"))

"""Text banks: named lists of phrases and patterns that captions and comments are matched on.

A phrase is stored with its :func:`skeleton` and matches a text whose
skeleton contains it as whole words, or, for phrases of at least
:data:`SUBSTRING_MIN` letters, anywhere in the text's skeleton with spaces
removed (so "b a d w o r d" and "ba dword" still meet "badword"; shorter
phrases would hit innocent words — the Scunthorpe problem). A pattern is a
regular expression matched on the :func:`normalize` form.

Banks have the media banks' controls (:mod:`trustfeed.moderation._bank_rules`):
``enabled``, ``disable_until`` (paused until that time), and ``negative``
allow-list banks — a text matching one (say, the name of a town that contains
a banned word) has every other bank's match suppressed.

Patterns run on the ``regex`` module with a time limit rather than on ``re``:
Python's ``re`` cannot be interrupted, so one pattern with nested
quantifiers (``(a|aa)+$``) could stall screening on a crafted caption. Each
pattern is (1) compiled, (2) refused if longer than :data:`PATTERN_MAX`,
(3) tried on adversarial inputs at add time and refused if it runs out of
time there, and (4) run with :data:`PATTERN_TIMEOUT` on every text; a
timeout at match time raises :class:`PatternTimeout`, which the gate turns
into a fail-closed decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import regex
import sqlalchemy as sa

from trustfeed.moderation._bank_rules import MatchResult, Switchable
from trustfeed.moderation._errors import ModerationError, UnknownBank
from trustfeed.moderation._gate import Gate
from trustfeed.moderation._status import SEVERITY, Actor, Status
from trustfeed.moderation._tables import add_missing_columns
from trustfeed.moderation.text import _tables as t
from trustfeed.moderation.text._errors import InvalidPattern, PatternTimeout
from trustfeed.moderation.text._normalize import NORMALIZER_VERSION, normalize, skeleton

Clock = Callable[[], float]
EntryKind = Literal["phrase", "pattern"]

#: Phrases at least this long (skeleton, spaces removed) also match inside words.
SUBSTRING_MIN = 6
PATTERN_MAX = 300
#: Seconds one pattern may run on one text.
PATTERN_TIMEOUT = 0.05
#: Inputs that make backtracking patterns blow up, tried when a pattern is added.
_PROBES = ("a" * 3000 + "!", "ab" * 1500 + "!", ("x " * 1500) + "!", "a1" * 1500)


@dataclass(frozen=True)
class TextBank(Switchable):
    """A text bank's settings; its entries are rows of ``moderation_text_bank_entries``."""

    name: str
    action: Status
    enabled: bool
    negative: bool = False
    disable_until: float | None = None


@dataclass(frozen=True)
class TextEntry:
    """One phrase or pattern of a bank."""

    id: int
    bank: str
    kind: EntryKind
    value: str
    key: str


@dataclass(frozen=True)
class TextMatch:
    """A bank entry a text matched, and the bank's action (the entry text is not repeated)."""

    bank: str
    entry_id: int
    kind: EntryKind
    action: Status


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """Steps 1–3 of the module docstring: compile, bound, and probe a pattern.

    >>> compile_pattern(r"free\\s+mone?y").search("get free money") is not None
    True
    >>> compile_pattern(r"(a|aa)+$")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trustfeed.moderation.text._errors.InvalidPattern: pattern ... backtracks catastrophically ...
    """
    if not pattern or len(pattern) > PATTERN_MAX:
        raise InvalidPattern(f"a pattern must be 1–{PATTERN_MAX} characters, got {len(pattern)}")
    try:
        compiled = regex.compile(pattern, regex.VERSION1)
    except regex.error as exc:
        raise InvalidPattern(f"pattern {pattern!r} does not compile: {exc}") from exc
    for probe in _PROBES:
        try:
            compiled.search(probe, timeout=PATTERN_TIMEOUT)
        except TimeoutError as exc:
            raise InvalidPattern(
                f"pattern {pattern!r} backtracks catastrophically (timed out on a probe input);"
                " avoid nested quantifiers such as (a+)+ or (a|aa)+"
            ) from exc
    return compiled


class _Entries:
    """Entries in memory, loaded incrementally by id; patterns compiled once."""

    def __init__(self) -> None:
        self.last_id = 0
        self.entries: dict[int, TextEntry] = {}
        self.patterns: dict[int, regex.Pattern[str]] = {}

    def load(self, conn: sa.Connection) -> None:
        e = t.text_bank_entries.c
        query = sa.select(e.id, e.bank, e.kind, e.value, e.key).where(e.id > self.last_id)
        for row in conn.execute(query.order_by(e.id)):
            entry = TextEntry(int(row.id), row.bank, row.kind, row.value, row.key)
            self.entries[entry.id] = entry
            if entry.kind == "pattern":
                self.patterns[entry.id] = regex.compile(entry.key, regex.VERSION1)
            self.last_id = entry.id


class TextBanks:
    """Text bank settings and entries in SQL, and matching of one text against them."""

    def __init__(
        self, engine: sa.Engine, *, clock: Clock = time.time, gate: Gate | None = None
    ) -> None:
        """With a ``gate``, every new entry re-scans the stored captions through it."""
        self._engine = engine
        self._clock = clock
        self._gate = gate
        self._cache = _Entries()
        t.metadata.create_all(engine)
        add_missing_columns(engine, t.text_banks)

    # ------------------------------------------------------------------ settings
    def create(
        self,
        name: str,
        *,
        action: Status = Status.QUARANTINED,
        enabled: bool = True,
        negative: bool = False,
    ) -> TextBank:
        """Create a bank whose matches move an item to ``action`` (a restriction).

        A ``negative`` bank is an allow-list: its matches act on nothing and
        suppress every other bank's matches for that text.
        """
        action = Status(action)
        if action in (Status.PENDING, Status.ELIGIBLE):
            raise ModerationError(f"a bank's action must restrict the item, not {action}")
        row = {"name": name, "action": action, "enabled": enabled, "negative": negative}
        row |= {"created_at": self._clock()}
        with self._engine.begin() as conn:
            if self._bank(conn, name) is not None:
                raise ModerationError(f"text bank {name!r} already exists")
            conn.execute(t.text_banks.insert().values(**row))
        return self.get(name)

    def get(self, name: str) -> TextBank:
        """The bank called ``name``; :class:`UnknownBank` if there is none."""
        with self._engine.connect() as conn:
            return self._require(conn, name)

    def all(self) -> list[TextBank]:
        """Every text bank, by name."""
        query = sa.select(t.text_banks).order_by(t.text_banks.c.name)
        with self._engine.connect() as conn:
            return [_bank(r) for r in conn.execute(query)]

    def set_enabled(
        self, name: str, enabled: bool, *, disable_until: float | None = None
    ) -> TextBank:
        """Switch a bank on or off; ``disable_until`` pauses it until that time."""
        with self._engine.begin() as conn:
            self._require(conn, name)
            conn.execute(
                t.text_banks.update()
                .where(t.text_banks.c.name == name)
                .values(enabled=enabled, disable_until=disable_until)
            )
        return self.get(name)

    @staticmethod
    def _bank(conn: sa.Connection, name: str) -> TextBank | None:
        row = conn.execute(sa.select(t.text_banks).where(t.text_banks.c.name == name)).first()
        return None if row is None else _bank(row)

    def _require(self, conn: sa.Connection, name: str) -> TextBank:
        bank = self._bank(conn, name)
        if bank is None:
            raise UnknownBank(f"no text bank named {name!r}")
        return bank

    # ------------------------------------------------------------------ contents
    def add_phrase(self, name: str, phrase: str, *, note: str = "") -> TextEntry:
        """Add an exact phrase; it is stored with its skeleton, which is what matches."""
        key = skeleton(phrase)
        if not key:
            raise ModerationError(f"phrase {phrase!r} normalises to nothing")
        return self._add(name, "phrase", phrase, key, note)

    def add_pattern(self, name: str, pattern: str, *, note: str = "") -> TextEntry:
        """Add a regular expression, matched on the normalised text (validated first)."""
        compile_pattern(pattern)
        return self._add(name, "pattern", pattern, pattern, note)

    def _add(self, name: str, kind: EntryKind, value: str, key: str, note: str) -> TextEntry:
        if len(value) > 500 or len(key) > 500:
            raise ModerationError("a bank entry must be at most 500 characters")
        row: dict[str, Any] = {"bank": name, "kind": kind, "value": value, "key": key}
        row |= {"note": note[:200]}
        row |= {"normalizer": NORMALIZER_VERSION, "added_at": self._clock()}
        e = t.text_bank_entries.c
        with self._engine.begin() as conn:
            self._require(conn, name)
            dup = sa.select(e.id).where(e.bank == name, e.kind == kind, e.key == key)
            if conn.execute(dup).first() is not None:
                raise ModerationError(f"text bank {name!r} already holds that {kind}")
            done: Any = conn.execute(t.text_bank_entries.insert().values(**row))
        entry = TextEntry(int(done.inserted_primary_key[0]), name, kind, value, key)
        if self._gate is not None:
            self.rescan(entry, self._gate)
        return entry

    # ------------------------------------------------------------------ captions
    def store_caption(self, item_id: int, text: str) -> None:
        """Keep an item's caption so later bank entries can re-scan it."""
        row = {"item_id": int(item_id), "text": text, "at": self._clock()}
        with self._engine.begin() as conn:
            conn.execute(t.captions.delete().where(t.captions.c.item_id == int(item_id)))
            conn.execute(t.captions.insert().values(**row))

    def caption(self, item_id: int) -> str | None:
        """The caption stored for an item (None: it had none)."""
        query = sa.select(t.captions.c.text).where(t.captions.c.item_id == int(item_id))
        with self._engine.connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else str(found)

    def rescan(self, entry: TextEntry, gate: Gate) -> list[int]:
        """Move every stored caption's item that ``entry`` matches to its bank's action.

        1. Skip a negative bank (it restricts nothing) and an inactive one (it
           matches nothing, now or on re-scan).
        2. Match the one entry against every stored caption (normalised as at upload).
        3. Drop the captions an active negative bank allows.
        4. Escalate the rest through the gate as ``rule:textbank:<bank>``; items
           already as restricted, or decided by a moderator more severely, stay.
        """
        with self._engine.connect() as conn:
            bank = self._require(conn, entry.bank)
            rows = conn.execute(sa.select(t.captions.c.item_id, t.captions.c.text)).all()
        if bank.negative or not bank.active(self._clock()):
            return []
        pattern = regex.compile(entry.key, regex.VERSION1) if entry.kind == "pattern" else None
        hits = [
            int(r.item_id)
            for r in rows
            if self._entry_hits(entry, pattern, r.text) and not self.match_all(r.text).suppressed_by
        ]
        if not hits:
            return []
        actor = Actor("rule", f"textbank:{bank.name}")
        reason = f"text bank {bank.name!r} re-scan (entry {entry.id})"
        moved = gate.escalate(hits, bank.action, reason=reason, actor=actor)
        return [m.item_id for m in moved]

    @staticmethod
    def _entry_hits(entry: TextEntry, pattern: regex.Pattern[str] | None, text: str) -> bool:
        if pattern is not None:
            return _pattern_hit(pattern, entry.id, normalize(text))
        words = f" {skeleton(text)} "
        return _phrase_hit(entry.key, words, words.replace(" ", ""))

    def entries(self, name: str) -> list[TextEntry]:
        """A bank's entries, oldest first."""
        e = t.text_bank_entries.c
        query = sa.select(e.id, e.bank, e.kind, e.value, e.key).where(e.bank == name)
        with self._engine.connect() as conn:
            self._require(conn, name)
            rows = conn.execute(query.order_by(e.id)).all()
        return [TextEntry(int(r.id), r.bank, r.kind, r.value, r.key) for r in rows]

    # ------------------------------------------------------------------ matching
    def match(self, text: str) -> list[TextMatch]:
        """The entries of active positive banks that ``text`` matches, most severe first;
        none when an active negative bank matches it too."""
        return self.match_all(text).actionable

    def match_all(self, text: str) -> MatchResult[TextMatch]:
        """Matches of every active bank: positive ones, and the allow-list ones suppressing them."""
        now = self._clock()
        with self._engine.connect() as conn:
            banks = {b.name: b for b in (_bank(r) for r in conn.execute(sa.select(t.text_banks)))}
            self._cache.load(conn)
        active = {n for n, b in banks.items() if b.active(now)}
        found = self._matching(text, active, banks) if active else []
        return MatchResult.split(found, lambda m: banks[m.bank].negative)

    def _matching(self, text: str, active: set[str], banks: dict[str, TextBank]) -> list[TextMatch]:
        normal = normalize(text)
        words = f" {skeleton(text)} "
        compact = words.replace(" ", "")
        found = []
        for entry in self._cache.entries.values():
            if entry.bank not in active:
                continue
            if entry.kind == "phrase":
                hit = _phrase_hit(entry.key, words, compact)
            else:
                hit = _pattern_hit(self._cache.patterns[entry.id], entry.id, normal)
            if hit:
                found.append(TextMatch(entry.bank, entry.id, entry.kind, banks[entry.bank].action))
        return sorted(found, key=_match_order)


def _phrase_hit(key: str, words: str, compact: str) -> bool:
    if f" {key} " in words:
        return True
    squeezed = key.replace(" ", "")
    return len(squeezed) >= SUBSTRING_MIN and squeezed in compact


def _pattern_hit(pattern: regex.Pattern[str], entry_id: int, text: str) -> bool:
    try:
        return pattern.search(text, timeout=PATTERN_TIMEOUT) is not None
    except TimeoutError as exc:
        raise PatternTimeout(f"text bank entry {entry_id} timed out") from exc


def _match_order(m: TextMatch) -> tuple[int, int]:
    return (-SEVERITY[m.action], m.entry_id)


def _bank(row: sa.Row[Any]) -> TextBank:
    m: Any = row._mapping
    until = m["disable_until"]
    return TextBank(
        m["name"],
        Status(m["action"]),
        bool(m["enabled"]),
        bool(m["negative"]),
        None if until is None else float(until),
    )

"""The running platform: custody, content security, the event log and the live model.

Every operation a party can perform lives here, with its access check, so
the HTTP API, the CLI and the demo share one path. Operations that touch
personal data ask the policy point first; its decision (allow or deny) is in
the ledger before anything happens.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from trustfeed._closeable import Closeable
from trustfeed.custody import (
    AccessDenied,
    AccessRequest,
    Action,
    DataClass,
    Decision,
    Principal,
    Resource,
    Role,
)
from trustfeed.custody._boundary import Custody
from trustfeed.custody._keyfile import generate_keyfile, load_keyfile
from trustfeed.custody._private_file import write_private
from trustfeed.custody.ledger import generate_signing_key
from trustfeed.custody.vault._requests import PURPOSE_ERASURE, PURPOSE_SUBJECT_ACCESS, user_request
from trustfeed.moderation import Appeals, Moderation, ReviewQueue, Status, Taxonomy
from trustfeed.recommend import Recommender
from trustfeed.service._catalog import Catalog, CatalogItem
from trustfeed.service._errors import Forbidden, NotFound, ServiceError
from trustfeed.service._events import Event
from trustfeed.service._exposure import ExposureLog
from trustfeed.service._pipeline import Archiver, Trainer, load_snapshot, save_snapshot
from trustfeed.service._settings_store import UserSettings
from trustfeed.service._tokens import TokenStore
from trustfeed.stream import EventLog, open_log

log = logging.getLogger(__name__)

PURPOSE_FEED = "feed_serving"
MAX_FEED = 100
MAX_CURSOR = 1000
ERASED_CACHE_S = 5.0
REFRESH_DUTY = 4.0  # wait at least this many times a re-solve's length before the next
ERASED_CACHE_MAX = 500_000


@dataclass(frozen=True)
class PlatformConfig:
    """Where everything lives; :meth:`from_settings` fills it from the environment."""

    home: Path
    store_url: str
    log_url: str
    #: Moderation's store. On SQLite it must be another file than the custody
    #: store: the gate writes in a transaction that appends to the ledger, and
    #: SQLite locks a whole file for a writer. One PostgreSQL URL serves both.
    moderation_url: str
    domestic: str
    keyfile: Path
    ledger_key: Path
    origin: str = "trustfeed.local/ledger"
    seed: int = 42
    refresh_every_s: float = 30.0
    snapshot_every_s: float = 300.0
    model_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> PlatformConfig:
        home = Path(settings.home)
        values: dict[str, Any] = {
            "home": home,
            "store_url": settings.custody_store_url,
            "log_url": str(home / "log"),
            "moderation_url": _moderation_url(settings.custody_store_url, home),
            "domestic": settings.domestic,
            "keyfile": settings.custody_keyfile,
            "ledger_key": settings.ledger_key_file,
            "origin": settings.ledger_origin,
            "seed": settings.seed,
        }
        return cls(**(values | overrides))


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    last_offset: int


class Platform(Closeable):
    """One deployment on one machine (see the module docstring)."""

    def __init__(
        self,
        config: PlatformConfig,
        custody: Custody,
        moderation: Moderation,
        log_: EventLog,
        model: Recommender,
        position: int,
    ) -> None:
        self.config = config
        self.custody, self.moderation, self.log, self.model = custody, moderation, log_, model
        engine = custody.engine
        self.tokens = TokenStore(engine)
        self.catalog = Catalog(engine)
        self.settings = UserSettings(engine, digest=custody.vault.owner_digest)
        self.exposure = ExposureLog(engine)
        # Keeps a trained batch and its log position together for snapshots (the
        # model itself is thread-safe: readers never take this lock).
        self.model_lock = threading.RLock()
        self.archiver = Archiver(
            log_, custody.vault, engine, domestic=config.domestic,
            principal=Principal("trustfeed-ingest", Role.OPERATOR, config.domestic),
        )  # fmt: skip
        self.trainer = Trainer(
            log_, model, position=position, pseudonyms=custody.pseudonyms,
            decide=self._decide_or_raise, catalog=self.catalog,
            principal=Principal("trustfeed-trainer", Role.SERVICE, config.domestic),
            is_erased=custody.vault.is_erased, lock=self.model_lock,
        )  # fmt: skip
        self.eligibility = moderation.feed()
        if moderation.queue is None or moderation.strikes is None:
            raise ServiceError("moderation must be opened with Moderation.open")
        self.review: ReviewQueue = moderation.queue
        self.moderation_engine = engine_of(moderation)
        self.appeals = Appeals(
            self.moderation_engine, gate=moderation.gate, sink=custody.ledger,
            strikes=moderation.strikes,
        )  # fmt: skip
        self.taxonomy = Taxonomy.load()
        self.media_dir = config.home / "media"
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._new_events = threading.Condition()
        self.started_at = time.time()
        self.errors: dict[str, str] = {}
        self._erasures: dict[str, tuple[bool, float]] = {}
        self.last_refresh_s: float | None = None

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def open(
        cls,
        config: PlatformConfig,
        *,
        text_classifiers: Sequence[Any] | None = None,
    ) -> Platform:
        """Open (creating keys and stores on first use) the deployment ``config`` names."""
        config.home.mkdir(parents=True, exist_ok=True)
        _ensure_keys(config)
        keys = load_keyfile(config.keyfile)
        signer = config.ledger_key.read_text(encoding="utf-8").strip()
        custody = Custody.open(
            config.store_url, keys=keys, domestic=config.domestic,
            signing_key=signer, origin=config.origin,
        )  # fmt: skip
        try:
            moderation = Moderation.open(
                config.moderation_url, sink=custody.ledger, text_classifiers=text_classifiers
            )
            log_ = open_log(config.log_url)
        except BaseException:
            custody.close()
            raise
        model, position = _load_model(config)
        platform = cls(config, custody, moderation, log_, model, position)
        platform.sync_eligibility(full=True)
        return platform

    def start(self) -> None:
        """Run the pipeline (log → vault, log → model), eligibility and refresh in threads."""
        for name, target in (("pipeline", self._pipeline_loop), ("refresh", self._refresh_loop)):
            thread = threading.Thread(target=target, name=f"trustfeed-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        with self._new_events:
            self._new_events.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        self.snapshot()
        self.log.close()
        self.moderation.close()
        self.custody.close()

    @property
    def _snapshot_dir(self) -> Path:
        return self.config.home / "snapshot"

    def _pipeline_loop(self) -> None:
        last_snapshot = time.monotonic()
        while not self._stop.is_set():
            busy = self._guarded("pipeline", self.pump)
            if time.monotonic() - last_snapshot > self.config.snapshot_every_s:
                self._guarded("snapshot", self.snapshot)
                last_snapshot = time.monotonic()
            if not busy:
                with self._new_events:
                    self._new_events.wait(timeout=0.05)

    def _refresh_loop(self) -> None:
        """Re-solve the model now and then; the policy set is re-read every round.

        A re-solve of a large catalogue takes a core for tens of seconds, so the
        pause after one is at least ``REFRESH_DUTY`` times its length: serving
        keeps most of the CPU however long solves get.
        """
        trained, next_solve = self.trainer.applied, 0.0
        while not self._stop.wait(self.config.refresh_every_s):
            self._guarded("policy", self.custody.policy.refresh)
            now = time.monotonic()
            if self.trainer.applied == trained or not self.model.fitted or now < next_solve:
                continue
            trained = self.trainer.applied
            self._guarded("refresh", self.model.refresh)
            took = time.monotonic() - now
            self.last_refresh_s = took
            next_solve = time.monotonic() + REFRESH_DUTY * took

    def _guarded(self, what: str, step: Any) -> Any:
        """A failing background step is logged and reported by /healthz, and retried."""
        try:
            result = step()
            self.errors.pop(what, None)
            return result
        except Exception as exc:  # a worker must outlive one bad step
            log.exception("%s step failed", what)
            self.errors[what] = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
            return False

    def pump(self) -> bool:
        """One round of background work; True if anything was done."""
        trained = self.trainer.step()  # first: what the feed shows is what freshness measures
        archived = self.archiver.step()
        changed = self.sync_eligibility()
        self.exposure.flush()
        return bool(archived or trained or changed)

    def drain(self, timeout: float = 60.0) -> None:
        """Work until the vault and the model reflect everything in the log (tests, demo)."""
        deadline = time.monotonic() + timeout
        target = self.log.last_offset()
        while self.archiver.position < target or self.trainer.position < target:
            if not self._threads:
                self.pump()
            elif time.monotonic() > deadline:
                raise ServiceError("the pipeline did not catch up in time")
            else:
                time.sleep(0.01)

    def snapshot(self) -> None:
        with self.model_lock:
            if self.model.fitted:
                save_snapshot(self.model, self.trainer.position, self._snapshot_dir)

    def sync_eligibility(self, *, full: bool = False) -> bool:
        """Tell the model what the gate made (in)eligible since the last poll."""
        changes = self.eligibility.poll(full=full)
        if not len(changes.unblocked) and not len(changes.blocked):
            return False
        pseudonym = self.custody.pseudonyms.item
        with self.model_lock:
            if len(changes.blocked):
                self.model.set_blocked([pseudonym(int(i)) for i in changes.blocked], True)
            if len(changes.unblocked):
                self.model.set_blocked([pseudonym(int(i)) for i in changes.unblocked], False)
        return True

    # -- access --------------------------------------------------------------

    def _decide_or_raise(self, request: AccessRequest) -> Decision:
        decision = self.custody.policy.decide(request)
        if not decision.allowed:
            raise Forbidden(
                f"denied by policy ({', '.join(decision.reasons) or 'no permit'}); "
                f"recorded in the ledger at {decision.ledger_index}"
            )
        return decision

    def authorize(
        self,
        principal: Principal,
        action: Action,
        data_class: DataClass,
        *,
        purpose: str,
        owner: str | None = None,
        resource_id: str | None = None,
        residency: str | None = None,
        justification: str = "",
    ) -> Decision:
        """Ask the policy point; a deny raises :class:`Forbidden` (and is in the ledger)."""
        resource = Resource(
            resource_id or (f"user/{owner}/{data_class.value}" if owner else data_class.value),
            data_class, residency or self.config.domestic, owner=owner,
        )  # fmt: skip
        request = AccessRequest(principal, action, resource, purpose, justification)
        return self._decide_or_raise(request)

    # -- operations ----------------------------------------------------------

    def ingest(self, principal: Principal, events: Sequence[Event]) -> IngestResult:
        """Validate, authorise (one decision per user in the batch) and durably append."""
        if not events:
            raise ServiceError("a batch needs at least one event")
        # One decision per batch (the vault's writes then decide per user and record).
        self.authorize(
            principal, Action.WRITE, DataClass.WATCH_HISTORY, purpose="ingest",
            resource_id=f"events/{events[0].idempotency_key}+{len(events) - 1}",
        )  # fmt: skip
        acks = self.log.append([(e.idempotency_key, e.payload()) for e in events])
        with self._new_events:
            self._new_events.notify_all()
        duplicates = sum(1 for a in acks if a.duplicate)
        return IngestResult(len(acks) - duplicates, duplicates, max(a.offset for a in acks))

    def _check_user(self, user_id: str) -> None:
        if self._erased(user_id):
            raise NotFound(f"user {user_id!r} was erased")

    def _erased(self, user_id: str) -> bool:
        """Erasure is permanent, so a yes is kept; a no is re-read after a few seconds
        (another replica may erase), keeping SQL off the feed's hot path."""
        now = time.monotonic()
        known = self._erasures.get(user_id)
        if known is None or (not known[0] and now - known[1] > ERASED_CACHE_S):
            known = (self.custody.vault.is_erased(user_id), now)
            if len(self._erasures) > ERASED_CACHE_MAX:  # keep memory bounded: drop the noes
                self._erasures = {u: v for u, v in self._erasures.items() if v[0]}
            self._erasures[user_id] = known
        return known[0]

    def feed(
        self, principal: Principal, user_id: str, *, k: int = 10, cursor: int = 0
    ) -> dict[str, Any]:
        """A page of the user's feed, each item with its reasons (personalised or not)."""
        if not 1 <= k <= MAX_FEED or not 0 <= cursor <= MAX_CURSOR:
            raise ServiceError(f"k must be 1..{MAX_FEED} and cursor 0..{MAX_CURSOR}")
        decision = self._feed_access(principal, user_id)
        personalised = self.settings.personalised(user_id)
        if not self.model.fitted:
            return _page(user_id, personalised, [], cursor, k, decision)
        # The model is safe to read while the trainer writes (its own read/write
        # lock): feeds never wait on this platform's model_lock.
        wanted = cursor + k
        if personalised:
            pseudonym = self.custody.pseudonyms.user(user_id)
            ids, scores, reasons = self.model.recommend_with_reasons(pseudonym, k=wanted)
        else:
            ids, scores, reasons = self.model.popular(wanted)  # DSA Art. 38: no profile used
        entries = self._entries(ids, scores, reasons)[cursor:]
        self._count_exposure(entries[:k], personalised)
        return _page(user_id, personalised, entries, cursor, k, decision)

    def _count_exposure(self, entries: list[dict], personalised: bool) -> None:
        items = [self.catalog.get(e["item_id"]) for e in entries]
        self.exposure.record(((i.topic, i.creator_id) for i in items), personalised=personalised)

    def _entries(self, ids: np.ndarray, scores: np.ndarray, reasons: list[Any]) -> list[dict]:
        item_ids = self.catalog.item_ids(ids[ids >= 0])
        out = []
        for item_id, score, why in zip(item_ids, scores, reasons, strict=False):
            if item_id is None:
                continue  # not in the catalogue: never uploaded here, so never screened
            out.append({
                "item_id": item_id, "score": float(score),
                "reasons": [self._reason(r) for r in why],
            })  # fmt: skip
        return out

    def _reason(self, reason: Any) -> dict[str, Any]:
        """A reason with public ids: the model names items by their pseudonyms."""
        out = reason.to_dict()
        because = out.get("because_item")
        if because is not None:
            public = self.catalog.item_ids([because])[0]
            out["because_item"] = public
            out["text"] = out["text"].replace(str(because), str(public) if public else "a video")
        return out

    def _feed_access(self, principal: Principal, user_id: str) -> Decision:
        self._check_user(user_id)
        return self.authorize(
            principal, Action.READ, DataClass.PSEUDONYMOUS_EVENTS,
            purpose=PURPOSE_FEED, owner=user_id,
        )  # fmt: skip

    def explain(self, principal: Principal, user_id: str, item_id: int) -> dict[str, Any]:
        """Why this item is (or would be) in this user's feed."""
        self._feed_access(principal, user_id)
        item = self.catalog.get(item_id)
        status = self.moderation.gate.status(item_id)
        personalised = self.settings.personalised(user_id)
        who = self.custody.pseudonyms.user(user_id)
        reasons = (
            self.model.explain(who, item.pseudonym, personalised=personalised)
            if self.model.fitted
            else []
        )
        return {
            "user_id": user_id, "item_id": item_id, "personalised": personalised,
            "status": status.value, "servable": status is Status.ELIGIBLE,
            "reasons": [self._reason(r) for r in reasons],
        }  # fmt: skip

    def upload(
        self,
        principal: Principal,
        *,
        item_id: int,
        media: bytes,
        media_type: str,
        caption: str,
        creator_id: str,
        topic: str,
        duration_ms: int,
    ) -> Status:
        """Register a video, screen it, and tell the model its metadata; returns its status."""
        if principal.role not in (Role.OPERATOR, Role.USER):
            raise Forbidden("only the operator or a creator may upload")
        if principal.role is Role.USER and creator_id != principal.id:
            raise Forbidden("a creator uploads only as themself")
        if not media:
            raise ServiceError("the upload is empty")
        pseudonyms = self.custody.pseudonyms
        item = CatalogItem(
            item_id, pseudonyms.item(item_id), creator_id, topic, duration_ms,
            caption, media_type, time.time(),
        )  # fmt: skip
        self.catalog.add(item)
        (self.media_dir / str(item_id)).write_bytes(media)
        status = self.moderation.submit(item_id, media, uploader=creator_id, caption=caption)
        meta = pd.DataFrame({
            "item_id": [item.pseudonym], "creator_id": [self.catalog.creator_index(creator_id)],
            "topic": [topic], "published_at": [item.uploaded_at],
        })  # fmt: skip
        with self.model_lock:
            self.model.set_items(meta)
        self.sync_eligibility()
        return status

    def media(self, item_id: int) -> bytes:
        self.catalog.get(item_id)
        return (self.media_dir / str(item_id)).read_bytes()

    def set_personalised(self, principal: Principal, user_id: str, personalised: bool) -> None:
        """The user's choice of a personalised or non-profiling feed (DSA Art. 38)."""
        self._check_user(user_id)
        self.authorize(
            principal, Action.WRITE, DataClass.PUBLIC_PROFILE,
            purpose="user_settings", owner=user_id,
        )  # fmt: skip
        self.settings.set(user_id, personalised=personalised)

    def export_user(self, principal: Principal, user_id: str) -> dict[str, Any]:
        """Everything held about the user (GDPR Art. 15/20), through the vault's own check."""
        request = user_request(
            principal, Action.EXPORT, owner=user_id,
            residency=self.config.domestic, purpose=PURPOSE_SUBJECT_ACCESS,
        )  # fmt: skip
        try:
            bundle = self.custody.vault.export(request)
        except AccessDenied as exc:
            raise Forbidden(str(exc)) from exc
        bundle["settings"] = {"personalised": self.settings.personalised(user_id)}
        return bundle

    def erase_user(self, principal: Principal, user_id: str, justification: str) -> dict[str, Any]:
        """Crypto-shred the user's data, remove them from the model, revoke their tokens."""
        request = user_request(
            principal, Action.ERASE, owner=user_id, residency=self.config.domestic,
            purpose=PURPOSE_ERASURE, justification=justification,
        )  # fmt: skip
        try:
            receipt = self.custody.vault.erase(request)
        except AccessDenied as exc:
            raise Forbidden(str(exc)) from exc
        self.trainer.forget(user_id)
        self._erasures[user_id] = (True, time.monotonic())
        with self.model_lock:
            forgotten = self.model.forget_users([self.custody.pseudonyms.user(user_id)])
        self.settings.forget(user_id)
        revoked = self.tokens.revoke_principal(user_id, Role.USER)
        return {
            "user_id": user_id, "records": receipt.records,
            "data_classes": list(receipt.data_classes), "ledger_index": receipt.ledger_index,
            "removed_from_model": bool(forgotten), "tokens_revoked": revoked,
        }  # fmt: skip

    def health(self) -> dict[str, Any]:
        return {
            "status": "degraded" if self.errors else "ok",
            "errors": dict(self.errors),
            "log_offset": self.log.last_offset(),
            "vault_position": self.archiver.position,
            "model_position": self.trainer.position,
            "model_fitted": self.model.fitted,
            "last_refresh_s": self.last_refresh_s,
            "ledger_size": self.custody.ledger.size(),
            "catalog_items": len(self.catalog),
        }

    def bootstrap_token(self) -> str | None:
        """On first start, a custodian token written to ``home/keys/admin.token`` (mode 0600)."""
        if any(t.principal.role is Role.CUSTODIAN for t in self.tokens.list()):
            return None
        principal = Principal("custodian-admin", Role.CUSTODIAN, self.config.domestic)
        secret, _ = self.tokens.issue(principal, label="bootstrap", issued_by="trustfeed serve")
        path = self.config.home / "keys" / "admin.token"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        write_private(path, (secret + "\n").encode())
        return secret


def _page(
    user_id: str, personalised: bool, entries: list[dict], cursor: int, k: int, decision: Decision
) -> dict[str, Any]:
    page = entries[:k]
    more = len(entries) > k or len(page) == k
    return {
        "user_id": user_id,
        "personalised": personalised,
        "items": page,
        "next_cursor": cursor + len(page) if more and cursor + len(page) <= MAX_CURSOR else None,
        "ledger_index": decision.ledger_index,
    }


def engine_of(moderation: Moderation) -> sa.Engine:
    """The engine :meth:`Moderation.open` made (appeals and metrics share it)."""
    engine = moderation._owned
    if not isinstance(engine, sa.Engine):
        raise ServiceError("moderation must be opened with Moderation.open")
    return engine


def _moderation_url(store_url: str, home: Path) -> str:
    return f"sqlite:///{home / 'moderation.db'}" if store_url.startswith("sqlite") else store_url


def _ensure_keys(config: PlatformConfig) -> None:
    """First start: the custodian's key file and the ledger's signing key (0600).

    Each is written under a temporary name and renamed into place, so a crash
    mid-write leaves no empty key that every later start would trip over.
    """
    if not config.keyfile.exists():
        config.keyfile.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fresh_tmp(config.keyfile)
        generate_keyfile(tmp)
        os.replace(tmp, config.keyfile)
    if not config.ledger_key.exists():
        signer, verifier = generate_signing_key(config.origin)
        config.ledger_key.parent.mkdir(parents=True, exist_ok=True)
        public = config.ledger_key.with_suffix(".pub")
        tmp_public, tmp_key = _fresh_tmp(public), _fresh_tmp(config.ledger_key)
        tmp_public.write_text(verifier + "\n", encoding="utf-8")
        write_private(tmp_key, (signer + "\n").encode())
        os.replace(tmp_public, public)
        os.replace(tmp_key, config.ledger_key)  # last: its presence means both are whole


def _fresh_tmp(path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    return tmp


def _load_model(config: PlatformConfig) -> tuple[Recommender, int]:
    snapshot = load_snapshot(config.home / "snapshot")
    if snapshot is not None:
        return snapshot
    params = {"eligible_by_default": False, **config.model_params}
    return Recommender(seed=config.seed, **params), 0

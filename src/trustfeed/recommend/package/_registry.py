"""The custodian's side: trusted licensor keys, review, approval, and building approved models.

Every decision (key trusted, package approved or rejected) is appended to the
audit ledger *before* its row is committed, so the ledger never misses a
decision that took effect; if the commit then fails, a ``package_aborted``
record says so (the same rule as the policy point's grants).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from trustfeed._closeable import Closeable
from trustfeed.custody import EntrySink, encode_record
from trustfeed.custody.ledger import Verifier, parse_verifier
from trustfeed.recommend._recommender import Recommender
from trustfeed.recommend.package import _tables as t
from trustfeed.recommend.package._config import MODEL_CLASSES
from trustfeed.recommend.package._errors import NotApprovedError, PackageError
from trustfeed.recommend.package._package import Package
from trustfeed.recommend.package._review import Review, diff_packages
from trustfeed.recommend.package._signing import parse_licensor_key, verify_signature
from trustfeed.storage import open_engine

APPROVED = "approved"
REJECTED = "rejected"
PackageRef = Package | str | Path
_HEX_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class TrustedKey:
    """A licensor public key the custodian registered, and where that is in the ledger."""

    name: str
    key_id: str
    verifier: str
    trusted_by: str
    trusted_at: float
    ledger_index: int


@dataclass(frozen=True)
class PackageDecision:
    """One approval or rejection as stored; the latest decision for a package id counts."""

    seq: int
    package_id: str
    name: str
    version: str
    decision: str
    decided_by: str
    reason: str
    signed_by: tuple[str, ...]
    decided_at: float
    ledger_index: int
    manifest: str
    config: str

    @property
    def approved(self) -> bool:
        return self.decision == APPROVED


class PackageRegistry(Closeable):
    """Algorithm packages under custody: ``verify``, ``review``, ``approve``, ``build_model``."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        sink: EntrySink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self._sink, self._clock = engine, sink, clock
        self._owned: list[Any] = []
        t.create_tables(engine)

    @classmethod
    def open(cls, url: str) -> PackageRegistry:
        """The registry in the custody store at ``url``, writing to that store's ledger."""
        from trustfeed.custody.ledger import Ledger

        ledger = Ledger.open(url)
        engine = open_engine(url)
        try:
            registry = cls(engine=engine, sink=ledger)
        except BaseException:
            engine.dispose()
            ledger.close()
            raise
        registry._owned = [ledger]
        return registry

    def close(self) -> None:
        for owned in self._owned:
            owned.close()
        if self._owned:
            self._engine.dispose()

    # ------------------------------------------------------------------ licensor keys

    def trust_key(self, verifier_text: str, *, by: str) -> TrustedKey:
        """Register a licensor's public key; packages must be signed by a trusted key."""
        verifier = parse_licensor_key(verifier_text)
        by = _actor(by)
        key_id = verifier.key_id.hex()
        if any(k.name == verifier.name and k.key_id == key_id for k in self.trusted_keys()):
            raise PackageError(f"key {verifier.name}+{key_id} is already trusted")
        now = self._clock()
        record = encode_record(
            "package_key_trusted", key_name=verifier.name, key_id=key_id,
            verifier=verifier.text(), by=by, at=now,
        )  # fmt: skip
        index = self._sink.append(record)
        key = TrustedKey(verifier.name, key_id, verifier.text(), by, now, index)
        row = dataclasses.asdict(key)
        self._commit(index, "key:" + key_id, lambda c: c.execute(t.trusted_keys.insert(), row))
        return key

    def trusted_keys(self) -> list[TrustedKey]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.trusted_keys).order_by(t.trusted_keys.c.trusted_at))
            return [TrustedKey(**row._mapping) for row in rows]

    def _verifiers(self) -> list[Verifier]:
        return [parse_verifier(k.verifier) for k in self.trusted_keys()]

    # ------------------------------------------------------------------ checks

    def verify(self, package: PackageRef) -> Package:
        """The package, once its bytes match its manifest and a trusted key signed it."""
        return self._verified(package)[0]

    def _verified(self, package: PackageRef) -> tuple[Package, list[str]]:
        """1. Re-read (a path) or re-check (a Package's bytes) against the manifest.
        2. Check the signature with the trusted licensor keys."""
        checked = _reread(package)
        return checked, verify_signature(checked, self._verifiers())

    def review(self, package: PackageRef) -> Review:
        """What changes against the last approved package (the package must verify)."""
        checked, signers = self._verified(package)
        baseline = self.last_approved(exclude=checked.id)
        return Review(
            package=checked,
            signed_by=tuple(signers),
            baseline=baseline,
            status=self.decision(checked.id),
            changes=tuple(diff_packages(baseline, checked)),
        )

    # ------------------------------------------------------------------ decisions

    def approve(self, package: PackageRef, by: str) -> PackageDecision:
        """Approve a package for training and deployment.

        1. Its bytes match its manifest and a trusted licensor key signed it.
        2. It is not approved already.
        3. The approval is appended to the ledger (naming the baseline the
           review compared it with), then the decision and the package's
           bytes are committed together.
        """
        by = _actor(by)
        checked, signers = self._verified(package)
        current = self.decision(checked.id)
        if current is not None and current.approved:
            raise PackageError(f"package {checked.id} is already approved")
        baseline = self.last_approved(exclude=checked.id)
        store = _store_files(checked)
        return self._decide(checked, APPROVED, by, "", signers, baseline, store)

    def reject(self, package: PackageRef, by: str, reason: str) -> PackageDecision:
        """Reject a package, or withdraw an approval (give the package, or a decided id).

        The package's bytes must match its manifest (so the id is meaningful);
        it need not be signed: a custodian may reject what it cannot verify.
        """
        by = _actor(by)
        if not reason.strip():
            raise PackageError("a rejection needs a reason")
        checked = self._known(package) if isinstance(package, str) else _reread(package)
        current = self.decision(checked.id)
        if current is not None and not current.approved:
            raise PackageError(f"package {checked.id} is already rejected")
        return self._decide(checked, REJECTED, by, reason.strip(), [], None, None)

    def _known(self, package_id: str) -> Package:
        """A package by id: a path when it is not an id; else its approved bytes in the store."""
        if not _HEX_ID.match(package_id):
            return _reread(package_id)
        return self.stored(package_id)

    def _decide(
        self,
        package: Package,
        decision: str,
        by: str,
        reason: str,
        signers: Sequence[str],
        baseline: PackageDecision | None,
        also: Callable[[sa.Connection], None] | None,
    ) -> PackageDecision:
        now = self._clock()
        record = encode_record(
            "package_decision", package=package.id, name=package.name, version=package.version,
            decision=decision, by=by, reason=reason, signed_by=list(signers),
            baseline=baseline.package_id if baseline else None, at=now,
        )  # fmt: skip
        index = self._sink.append(record)
        row = {
            "package_id": package.id, "name": package.name, "version": package.version,
            "decision": decision, "decided_by": by, "reason": reason,
            "signed_by": json.dumps(list(signers)), "decided_at": now, "ledger_index": index,
            "manifest": package.manifest_bytes.decode(), "config": package.config_text,
        }  # fmt: skip

        def change(conn: sa.Connection) -> None:
            conn.execute(t.decisions.insert(), row)
            if also is not None:
                also(conn)

        self._commit(index, package.id, change)
        found = self.decision(package.id)
        if found is None:  # pragma: no cover - the commit above just wrote it
            raise PackageError(f"decision on {package.id} was not stored")
        return found

    def _commit(self, index: int, subject: str, change: Callable[[sa.Connection], object]) -> None:
        try:
            with self._engine.begin() as conn:
                change(conn)
        except sa.exc.IntegrityError as exc:
            self._sink.append(encode_record("package_aborted", subject=subject, entry=index))
            raise PackageError(f"{subject}: conflicting concurrent change") from exc
        except Exception:
            self._sink.append(encode_record("package_aborted", subject=subject, entry=index))
            raise

    # ------------------------------------------------------------------ queries

    def decisions(self, package_id: str | None = None) -> list[PackageDecision]:
        """Every decision (or those on one package), oldest first."""
        query = sa.select(t.decisions).order_by(t.decisions.c.seq)
        if package_id is not None:
            query = query.where(t.decisions.c.package_id == package_id)
        with self._engine.connect() as conn:
            return [_decision(row) for row in conn.execute(query)]

    def decision(self, package_id: str) -> PackageDecision | None:
        """The latest decision on ``package_id``: the one that counts."""
        found = self.decisions(package_id)
        return found[-1] if found else None

    def approved(self, package_id: str) -> bool:
        found = self.decision(package_id)
        return found is not None and found.approved

    def last_approved(self, *, exclude: str | None = None) -> PackageDecision | None:
        """The most recently approved package that is still approved (the review baseline)."""
        latest: dict[str, PackageDecision] = {}
        for d in self.decisions():
            latest[d.package_id] = d
        live = [d for d in latest.values() if d.approved and d.package_id != exclude]
        return max(live, key=lambda d: d.seq, default=None)

    def require_approved(self, package: PackageRef) -> Package:
        """The package, verified again, if a custodian approved it; else NotApprovedError."""
        checked = self.verify(package)
        current = self.decision(checked.id)
        if current is None or not current.approved:
            state = "never approved" if current is None else f"rejected by {current.decided_by}"
            raise NotApprovedError(f"package {checked.id} is not approved ({state})")
        return checked

    def stored(self, package_id: str) -> Package:
        """An approved package's bytes as kept in the store (checked against its manifest)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.files.c.path, t.files.c.data).where(t.files.c.package_id == package_id)
            ).all()
        if not rows:
            raise PackageError(f"no approved package {package_id} in the store")
        package = Package.from_files({row.path: bytes(row.data) for row in rows})
        if package.id != package_id:
            raise PackageError(f"stored files of {package_id} hash to {package.id}")
        return package

    def current(self) -> Package | None:
        """The package to deploy: the last approved one still approved, from the store."""
        latest = self.last_approved()
        return None if latest is None else self.require_approved(self.stored(latest.package_id))

    # ------------------------------------------------------------------ models

    def build_model(self, package: PackageRef) -> Recommender:
        """A fresh model as the approved package configures it (with its initial weights)."""
        return instantiate(self.require_approved(package))


def instantiate(package: Package) -> Recommender:
    """The model a (checked, approved) package describes; only via ``build_model``."""
    config = package.config
    cls = MODEL_CLASSES[config.model_class]
    weights = package.weight_files
    if not weights:
        return cls(seed=config.seed, **config.engine_params())
    # Load from the bytes that were hashed, never from the directory again.
    with tempfile.TemporaryDirectory(prefix="trustfeed-package-") as tmp:
        for name, data in weights.items():
            path = Path(tmp, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        model = cls.load(tmp)
    if model.seed != config.seed or model.config != config.engine_config():
        raise PackageError("the initial weights do not match the package configuration")
    return model


def _reread(package: PackageRef) -> Package:
    if isinstance(package, Package):
        return Package.from_files(package.all_files(), source=package.source)
    return Package.open(package)


def _store_files(package: Package) -> Callable[[sa.Connection], None]:
    def store(conn: sa.Connection) -> None:
        known = conn.execute(
            sa.select(sa.func.count()).where(t.files.c.package_id == package.id)
        ).scalar_one()
        if not known:  # approved before, withdrawn, approved again: the bytes are the same
            rows = [
                {"package_id": package.id, "path": path, "data": data}
                for path, data in package.all_files().items()
            ]
            conn.execute(t.files.insert(), rows)

    return store


def _actor(by: str) -> str:
    by = by.strip()
    if not by:
        raise PackageError("name who decides (e.g. --by custodian:alice)")
    return by


def _decision(row: sa.Row) -> PackageDecision:
    values = dict(row._mapping)
    values["signed_by"] = tuple(json.loads(values["signed_by"]))
    return PackageDecision(**values)

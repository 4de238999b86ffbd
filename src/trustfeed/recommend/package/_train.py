"""Training from an approved package, with the lineage in the ledger.

Two entry points: :func:`train_from_package` (a batch run over given
partitions) and :class:`OnlineLineage` (the service's online trainer: admit
each batch before training on it, record lineage at each snapshot).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from trustfeed.custody import (
    AccessRequest,
    Action,
    Authorizer,
    DataClass,
    EntrySink,
    Principal,
    Resource,
)
from trustfeed.evaluation import evaluate_model
from trustfeed.recommend._recommender import Recommender
from trustfeed.recommend.package._canonical import model_hash
from trustfeed.recommend.package._errors import LineageError, NotApprovedError
from trustfeed.recommend.package._lineage import (
    DataManifest,
    LineageRecord,
    Partition,
    TrainingPartition,
    chain_digest,
    check_frame,
    code_version,
    frame_digest,
    record_training_run,
)
from trustfeed.recommend.package._package import Package
from trustfeed.recommend.package._registry import PackageRef, PackageRegistry

PURPOSE_TRAINING = "training"
#: ``evaluate(model, training_frame)`` → a JSON-able report.
Evaluator = Callable[[Recommender, pd.DataFrame], Mapping[str, Any]]


def train_from_package(
    registry: PackageRegistry,
    package: PackageRef,
    partitions: Sequence[TrainingPartition],
    ledger: EntrySink,
    *,
    domestic: str,
    model_dir: str | Path,
    evaluate: Evaluator | None = None,
    authorizer: Authorizer | None = None,
    principal: Principal | None = None,
) -> tuple[Recommender, LineageRecord]:
    """Train a model from an approved package on domestic partitions; record its lineage.

    1. The package verifies (bytes and trusted signature) and is approved.
    2. Every partition is domestic and pseudonymised, or NonDomesticDataError
       aborts the run here, before any training.
    3. With an ``authorizer``, the policy point allows training on each
       partition (its decisions are in the ledger; their entries go in the record).
    4. The model is built from the package and trained on the partitions in order.
    5. It is saved to ``model_dir`` (which must not exist) and hashed, then evaluated.
    6. The lineage record is appended to ``ledger``.
    """
    checked = registry.require_approved(package)
    if not partitions:
        raise LineageError("nothing to train on: no partitions given")
    manifest = DataManifest(domestic, tuple(p.partition(domestic) for p in partitions))
    manifest.require_domestic(domestic)
    out = _fresh_dir(model_dir)
    decisions = _authorize(authorizer, principal, manifest)
    frame = pd.concat([p.frame for p in partitions], ignore_index=True)
    model = _fit(registry.build_model(checked), frame)
    model.save(out)
    report = (evaluate or summary_evaluation)(model, frame)
    record = record_training_run(
        ledger, checked.id, manifest, code_version(), model_hash(out), report,
        package_approval=_approval_index(registry, checked), policy_decisions=decisions,
    )  # fmt: skip
    return model, record


def _fresh_dir(model_dir: str | Path) -> Path:
    out = Path(model_dir)
    if out.exists():
        # Why: the model hash covers every file there; stale files would enter it.
        raise LineageError(f"{out} exists; save each trained model to a new directory")
    return out


def _fit(model: Recommender, frame: pd.DataFrame) -> Recommender:
    if model.fitted:  # initial weights: continue from them, never reset them
        model.partial_fit(frame)
        return model.refresh()
    return model.fit(frame)


def _authorize(
    authorizer: Authorizer | None, principal: Principal | None, manifest: DataManifest
) -> list[int]:
    if authorizer is None:
        return []
    if principal is None:
        raise LineageError("a policy check needs the principal that trains")
    indexes = []
    for part in manifest.partitions:
        resource = Resource(
            f"training/{part.source}/{part.first}-{part.last}",
            DataClass.PSEUDONYMOUS_EVENTS,
            part.residency,
        )
        request = AccessRequest(principal, Action.TRAIN, resource, PURPOSE_TRAINING)
        indexes.append(authorizer.enforce(request).ledger_index)
    return indexes


def _approval_index(registry: PackageRegistry, package: Package) -> int:
    decision = registry.decision(package.id)
    if decision is None or not decision.approved:  # withdrawn while we trained
        raise NotApprovedError(f"package {package.id} lost its approval during training")
    return decision.ledger_index


def summary_evaluation(model: Recommender, frame: pd.DataFrame) -> dict[str, Any]:
    """The default report when no held-out data is given: what was trained, nothing more."""
    del model
    return {
        "protocol": "none (no held-out data given)",
        "rows": len(frame),
        "users": int(frame["user_id"].nunique()),
        "items": int(frame["item_id"].nunique()),
    }


def holdout_evaluation(test: pd.DataFrame, ks: Sequence[int] = (10, 20)) -> Evaluator:
    """An evaluator scoring full-ranking metrics on held-out, pseudonymised ``test`` events."""

    def evaluate(model: Recommender, frame: pd.DataFrame) -> dict[str, Any]:
        scores = evaluate_model(model, frame, test, ks)
        return {"protocol": "holdout", "test_rows": len(test), **scores}

    return evaluate


# ----------------------------------------------------------------------------- online


@dataclass
class _Pending:
    """Batches admitted since the last lineage record."""

    first: int | None = None
    last: int = -1
    rows: int = 0
    digests: list[bytes] = field(default_factory=list)
    key_version: int | None = None


class OnlineLineage:
    """Lineage of a model trained online: one ``training_run`` record per saved snapshot.

    Call :meth:`admit` with each pseudonymised batch *before* training on it
    (it raises NonDomesticDataError instead of letting foreign data in), and
    :meth:`record` after each snapshot is saved. Each record's data manifest
    covers the batches since the previous record, and names the previous
    snapshot's hash as ``parent_model``: the chain leads back to the package.
    """

    def __init__(
        self,
        ledger: EntrySink,
        *,
        package_id: str,
        package_approval: int,
        domestic: str,
        parent_model: str | None = None,
        source: str = "log",
    ) -> None:
        self._ledger, self._domestic, self._source = ledger, domestic, source
        self.package_id, self.package_approval = package_id, package_approval
        self.parent_model = parent_model
        self._pending = _Pending()
        self._lock = threading.Lock()

    @classmethod
    def for_package(
        cls, registry: PackageRegistry, package: Package, ledger: EntrySink, **kwargs: Any
    ) -> OnlineLineage:
        """Lineage for a model built from ``package``, which must be approved now."""
        checked = registry.require_approved(package)
        return cls(
            ledger,
            package_id=checked.id,
            package_approval=_approval_index(registry, checked),
            **kwargs,
        )

    def admit(
        self,
        frame: pd.DataFrame,
        *,
        first: int,
        last: int,
        residency: str,
        key_version: int | None = None,
    ) -> None:
        """Check one batch (domestic, pseudonymised) and remember it; raise before training."""
        label = f"{self._source} {first}-{last}"
        check_frame(frame, residency, self._domestic, label)
        digest = frame_digest(frame)
        with self._lock:
            p = self._pending
            if p.digests and key_version != p.key_version:
                raise LineageError("a pseudonym key change needs a lineage record first")
            if p.first is None:
                p.first = first
            p.last, p.rows, p.key_version = last, p.rows + len(frame), key_version
            p.digests.append(digest)

    def record(
        self, model_dir: str | Path, evaluation: Mapping[str, Any] | None = None
    ) -> LineageRecord | None:
        """After saving a snapshot to ``model_dir``: its lineage record (None if no new data)."""
        with self._lock:
            pending, self._pending = self._pending, _Pending()
        if pending.first is None:
            return None
        part = Partition(
            self._source, pending.first, pending.last, self._domestic, pending.rows,
            chain_digest(pending.digests), pending.key_version,
        )  # fmt: skip
        record = record_training_run(
            self._ledger, self.package_id, DataManifest(self._domestic, (part,)),
            code_version(), model_hash(model_dir), evaluation or {"protocol": "online"},
            package_approval=self.package_approval, parent_model=self.parent_model,
            at=time.time(),
        )  # fmt: skip
        self.parent_model = record.model_hash
        return record

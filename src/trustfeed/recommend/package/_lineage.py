"""Training lineage: which package, which data, which code made a model, in the ledger.

A data manifest lists the pseudonymised partitions a run trained on (log
offset ranges), each with its residency, row count and a SHA-256 over its
content; its own hash is the SHA-256 of its canonical JSON. A partition's
``sha256`` is SHA-256 over the concatenated content digests of the batches
it was trained in (one batch: SHA-256 of that batch's digest); a batch's
content digest is :func:`frame_digest`. Only the custodian, who holds the
pseudonym key and the log, can recompute them; an auditor checks that they
were committed to the ledger before the model was deployed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import trustfeed
from trustfeed.custody import EntrySink, encode_record
from trustfeed.custody.pseudonym import ALLOWED_COLUMNS, RESIDENCY_COLUMN, PseudonymBatch
from trustfeed.recommend.package._canonical import canonical_json, is_sha256_hex, sha256_hex
from trustfeed.recommend.package._errors import LineageError, NonDomesticDataError

RUN_KIND = "training_run"
_FRAME_FORMAT = b"trustfeed.frame/v1\n"
#: Columns a pseudonymised training frame may hold; anything else never left the custodian.
TRAINING_COLUMNS = frozenset({"user_id", "item_id", RESIDENCY_COLUMN, *ALLOWED_COLUMNS})


@dataclass(frozen=True)
class Partition:
    """One slice of training data: source and offsets, residency, rows, content digest."""

    source: str
    first: int
    last: int
    residency: str
    rows: int
    sha256: str
    key_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "first": self.first, "last": self.last,
            "residency": self.residency, "rows": self.rows, "sha256": self.sha256,
            "key_version": self.key_version,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Partition:
        try:
            return cls(**data)
        except TypeError as exc:
            raise LineageError(f"not a data partition: {data!r}") from exc

    def label(self) -> str:
        return f"{self.source} {self.first}-{self.last}"


@dataclass(frozen=True)
class DataManifest:
    """The exact training data of one run (no ids, no key material)."""

    domestic: str
    partitions: tuple[Partition, ...]

    def to_json(self) -> dict[str, Any]:
        return {"domestic": self.domestic, "partitions": [p.to_json() for p in self.partitions]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DataManifest:
        try:
            parts = tuple(Partition.from_json(p) for p in data["partitions"])
            return cls(str(data["domestic"]), parts)
        except (KeyError, TypeError) as exc:
            raise LineageError(f"not a data manifest: {exc}") from exc

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: what the lineage record commits to."""
        return sha256_hex(canonical_json(self.to_json()))

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)

    def foreign(self) -> list[Partition]:
        """Partitions that do not reside in the manifest's domestic jurisdiction."""
        return [p for p in self.partitions if p.residency != self.domestic]

    def require_domestic(self, domestic: str) -> None:
        """NonDomesticDataError unless the manifest and every partition are ``domestic``."""
        if self.domestic != domestic:
            raise NonDomesticDataError(
                f"the data manifest is for {self.domestic!r}, not {domestic!r}"
            )
        foreign = self.foreign()
        if foreign:
            names = ", ".join(f"{p.label()} ({p.residency})" for p in foreign)
            raise NonDomesticDataError(
                f"non-domestic partitions {names}: training uses domestic data only; run aborted"
            )


def frame_digest(frame: pd.DataFrame) -> bytes:
    """SHA-256 over a canonical column-major encoding of a pseudonymised frame.

    Columns in name order; integers as little-endian int64, other numbers as
    float64 (one NaN bit pattern), anything else as ``\\x1f``-joined text.
    """
    h = hashlib.sha256(_FRAME_FORMAT + b"%d\n" % len(frame))
    for name in sorted(frame.columns, key=str):
        h.update(str(name).encode() + b"\x00")
        h.update(_column_bytes(frame[name]))
    return h.digest()


def _column_bytes(values: pd.Series) -> bytes:
    if pd.api.types.is_integer_dtype(values) and not values.isna().any():
        return b"i8" + values.to_numpy(np.int64).astype("<i8").tobytes()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        floats = values.to_numpy(np.float64, na_value=np.nan).astype("<f8")
        floats[np.isnan(floats)] = np.nan  # one NaN pattern, whatever produced it
        return b"f8" + floats.tobytes()
    text = ("\x00" if pd.isna(v) else str(v) for v in values)
    return b"s" + "\x1f".join(text).encode("utf-8")


def chain_digest(batch_digests: Sequence[bytes]) -> str:
    """A partition's ``sha256``: SHA-256 over its batches' content digests, in order."""
    return sha256_hex(b"".join(batch_digests))


@dataclass(frozen=True)
class TrainingPartition:
    """A pseudonymised frame to train on, with where it came from and where it resides."""

    frame: pd.DataFrame
    first: int
    last: int
    residency: str
    source: str = "log"
    key_version: int | None = None

    @classmethod
    def from_batch(
        cls, batch: PseudonymBatch, *, first: int, last: int, residency: str, source: str = "log"
    ) -> TrainingPartition:
        """A partition from the pseudonym stream's batch (which carries its key version)."""
        return cls(batch.frame, first, last, residency, source, batch.key_version)

    def partition(self, domestic: str) -> Partition:
        """The manifest entry; refuses non-domestic or non-pseudonymised data first."""
        check_frame(self.frame, self.residency, domestic, self.label())
        digest = chain_digest([frame_digest(self.frame)])
        return Partition(
            self.source, self.first, self.last, self.residency, len(self.frame), digest,
            self.key_version,
        )  # fmt: skip

    def label(self) -> str:
        return f"{self.source} {self.first}-{self.last}"


def check_frame(frame: pd.DataFrame, residency: str, domestic: str, label: str) -> None:
    """Raise before training unless ``frame`` is domestic and holds only pseudonymised columns.

    1. The partition's declared residency is the domestic jurisdiction.
    2. A per-row ``residency`` column, if present, says the same for every row.
    3. Every column is one the pseudonym stream lets out (nothing raw rides along).
    """
    if residency != domestic:
        raise NonDomesticDataError(
            f"partition {label} resides in {residency!r}, not {domestic!r}: training uses "
            "domestic data only; run aborted"
        )
    if RESIDENCY_COLUMN in frame.columns:
        column = frame[RESIDENCY_COLUMN]
        foreign = int((column.isna() | (column.astype(str) != domestic)).sum())
        if foreign:
            raise NonDomesticDataError(
                f"partition {label}: {foreign} of {len(frame)} rows are not resident in "
                f"{domestic!r}; run aborted"
            )
    extra = sorted(str(c) for c in frame.columns if c not in TRAINING_COLUMNS)
    if extra:
        raise LineageError(f"partition {label} is not pseudonymised training data: {extra}")


# ----------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class LineageRecord:
    """One training run as the ledger holds it (``ledger_index`` is its entry)."""

    ledger_index: int
    package_id: str
    package_approval: int | None
    data_manifest: DataManifest
    data_manifest_hash: str
    code_version: str
    model_hash: str
    evaluation: dict[str, Any]
    parent_model: str | None = None
    policy_decisions: tuple[int, ...] = ()
    at: float = 0.0

    def fields(self) -> dict[str, Any]:
        """The record's fields as appended (``encode_record(RUN_KIND, **fields)``)."""
        return {
            "package": self.package_id, "package_approval": self.package_approval,
            "data_manifest": self.data_manifest.to_json(),
            "data_manifest_sha256": self.data_manifest_hash, "code_version": self.code_version,
            "model_hash": self.model_hash, "evaluation": self.evaluation,
            "parent_model": self.parent_model, "policy_decisions": list(self.policy_decisions),
            "at": self.at,
        }  # fmt: skip

    @classmethod
    def from_record(cls, index: int, record: Mapping[str, Any]) -> LineageRecord:
        """Parse a decoded ``training_run`` ledger record; LineageError when malformed."""
        try:
            return cls(
                ledger_index=index, package_id=record["package"],
                package_approval=record.get("package_approval"),
                data_manifest=DataManifest.from_json(record["data_manifest"]),
                data_manifest_hash=record["data_manifest_sha256"],
                code_version=record["code_version"], model_hash=record["model_hash"],
                evaluation=dict(record.get("evaluation") or {}),
                parent_model=record.get("parent_model"),
                policy_decisions=tuple(record.get("policy_decisions") or ()),
                at=float(record.get("at", 0.0)),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise LineageError(f"ledger entry {index} is not a training-run record: {exc}") from exc


def record_training_run(
    ledger: EntrySink,
    package_id: str,
    data_manifest: DataManifest,
    code_version: str,
    model_hash: str,
    evaluation: Mapping[str, Any],
    *,
    package_approval: int | None = None,
    parent_model: str | None = None,
    policy_decisions: Sequence[int] = (),
    at: float | None = None,
) -> LineageRecord:
    """Append one training run's lineage to ``ledger``; return it with its entry index.

    It records what happened, whatever it was: refusing non-domestic data is
    the trainer's job, before training (a record must never hide a run).
    """
    for name, value in (("package_id", package_id), ("model_hash", model_hash)):
        if not is_sha256_hex(value):
            raise LineageError(f"{name} must be a lowercase hex SHA-256, not {value!r}")
    if parent_model is not None and not is_sha256_hex(parent_model):
        raise LineageError(f"parent_model must be a hex SHA-256, not {parent_model!r}")
    record = LineageRecord(
        -1, package_id, package_approval, data_manifest, data_manifest.digest(), code_version,
        model_hash, _json_report(evaluation), parent_model, tuple(policy_decisions),
        time.time() if at is None else at,
    )  # fmt: skip
    index = ledger.append(encode_record(RUN_KIND, **record.fields()))
    return LineageRecord(**{**record.__dict__, "ledger_index": index})


def _json_report(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation as plain JSON (NaN/inf become null: JSON has no such numbers)."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    report = clean(dict(evaluation))
    try:
        canonical_json(report)
    except (TypeError, ValueError) as exc:
        raise LineageError(f"the evaluation report is not JSON: {exc}") from exc
    return report


# ----------------------------------------------------------------------------- code version


@functools.cache
def code_version() -> str:
    """``trustfeed.__version__``, plus ``git describe`` when running from a checkout."""
    described = _git_describe(Path(trustfeed.__file__).resolve().parent)
    return f"{trustfeed.__version__} (git {described})" if described else trustfeed.__version__


def _git_describe(where: Path) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "describe", "--always", "--dirty", "--tags"],
            cwd=where, capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None

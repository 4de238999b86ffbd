"""Signed algorithm packages, their review and approval, and training lineage.

The licensor builds and signs a package (:func:`build_package`,
:func:`sign_package`); the custodian trusts the licensor's key, reviews the
package against the last approved one, approves or rejects it
(:class:`PackageRegistry`, every decision in the ledger), and trains only from
an approved package on domestic data (:func:`train_from_package`,
:class:`OnlineLineage`), recording each run's lineage in the ledger
(:func:`record_training_run`), which an auditor traces with
``trustfeed audit lineage`` (:func:`trace_lineage`). See ``docs/packages.md``.
"""

from trustfeed.recommend.package._audit import LineageReport, render_lineage, trace_lineage
from trustfeed.recommend.package._canonical import canonical_json, model_hash
from trustfeed.recommend.package._config import (
    CONFIG_FORMAT,
    ENGINE_FEATURES,
    MODEL_CLASSES,
    AlgorithmConfig,
    ranking_weight_names,
)
from trustfeed.recommend.package._errors import (
    IntegrityError,
    LineageError,
    NonDomesticDataError,
    NotApprovedError,
    PackageError,
    SignatureError,
)
from trustfeed.recommend.package._lineage import (
    DataManifest,
    LineageRecord,
    Partition,
    TrainingPartition,
    code_version,
    frame_digest,
    record_training_run,
)
from trustfeed.recommend.package._package import PACKAGE_FORMAT, Package, build_package
from trustfeed.recommend.package._registry import (
    PackageDecision,
    PackageRegistry,
    TrustedKey,
)
from trustfeed.recommend.package._review import Change, Review
from trustfeed.recommend.package._signing import (
    generate_licensor_key,
    sign_package,
    verify_signature,
)
from trustfeed.recommend.package._train import (
    OnlineLineage,
    holdout_evaluation,
    summary_evaluation,
    train_from_package,
)

__all__ = [
    "CONFIG_FORMAT",
    "ENGINE_FEATURES",
    "MODEL_CLASSES",
    "PACKAGE_FORMAT",
    "AlgorithmConfig",
    "Change",
    "DataManifest",
    "IntegrityError",
    "LineageError",
    "LineageRecord",
    "LineageReport",
    "NonDomesticDataError",
    "NotApprovedError",
    "OnlineLineage",
    "Package",
    "PackageDecision",
    "PackageError",
    "PackageRegistry",
    "Partition",
    "Review",
    "SignatureError",
    "TrainingPartition",
    "TrustedKey",
    "build_package",
    "canonical_json",
    "code_version",
    "frame_digest",
    "generate_licensor_key",
    "holdout_evaluation",
    "model_hash",
    "ranking_weight_names",
    "record_training_run",
    "render_lineage",
    "sign_package",
    "summary_evaluation",
    "trace_lineage",
    "train_from_package",
    "verify_signature",
]

"""Training lineage: domestic-only training from an approved package, recorded in the ledger."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from tests.test_package_support import (
    DOMESTIC,
    HASHER,
    licensor_keys,
    make_package,
    pseudonymised,
    raw_events,
)

import trustfeed
from trustfeed.custody import AccessDenied, MemorySink, Principal, Role, decode_record
from trustfeed.custody.ledger import Ledger
from trustfeed.custody.policy import PolicyPoint
from trustfeed.recommend.package import (
    DataManifest,
    LineageError,
    NonDomesticDataError,
    NotApprovedError,
    OnlineLineage,
    Package,
    PackageRegistry,
    Partition,
    TrainingPartition,
    code_version,
    frame_digest,
    holdout_evaluation,
    model_hash,
    record_training_run,
    trace_lineage,
    train_from_package,
)
from trustfeed.storage import open_engine


@pytest.fixture
def custody(database_url: str):
    """A ledger and a registry over one store, the licensor's key trusted."""
    engine = open_engine(database_url)
    with Ledger.open(database_url) as ledger:
        registry = PackageRegistry(engine=engine, sink=ledger)
        registry.trust_key(licensor_keys()[1], by="custodian:alice")
        yield ledger, registry
    engine.dispose()


def partitions(residency: str = DOMESTIC) -> list[TrainingPartition]:
    events = raw_events(1)
    return [
        TrainingPartition(pseudonymised(events.iloc[:300]), 0, 299, DOMESTIC),
        TrainingPartition(pseudonymised(events.iloc[300:]), 300, 599, residency),
    ]


def approved_package(registry: PackageRegistry, tmp_path: Path) -> Path:
    path = make_package(tmp_path)
    registry.approve(path, "custodian:alice")
    return path


def kinds(ledger: Ledger) -> list[str]:
    return [decode_record(e)["kind"] for e in ledger.entries(0, ledger.size())]


# ----------------------------------------------------------------------------- training


def test_training_records_the_lineage_in_the_ledger(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    path = approved_package(registry, tmp_path)
    parts = partitions()
    model, record = train_from_package(
        registry, path, parts, ledger, domestic=DOMESTIC, model_dir=tmp_path / "model"
    )
    assert model.fitted
    assert record.package_id == Package.open(path).id
    assert record.package_approval == registry.decision(record.package_id).ledger_index
    assert record.model_hash == model_hash(tmp_path / "model")
    assert [p.rows for p in record.data_manifest.partitions] == [300, 300]
    assert record.data_manifest_hash == record.data_manifest.digest()
    assert record.code_version.startswith(trustfeed.__version__)
    assert record.evaluation["rows"] == 600
    stored = decode_record(ledger.entry(record.ledger_index))
    assert stored["kind"] == "training_run" and stored["model_hash"] == record.model_hash
    assert stored["data_manifest_sha256"] == record.data_manifest_hash
    report = trace_lineage(ledger, record.model_hash)
    assert report.problems == []
    assert set(report.included) == {record.ledger_index, record.package_approval}


def test_a_non_domestic_partition_aborts_before_training(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    path = approved_package(registry, tmp_path)
    before = ledger.size()
    with pytest.raises(NonDomesticDataError, match=r"log 300-599 resides in 'FR'"):
        train_from_package(
            registry, path, partitions("FR"), ledger, domestic=DOMESTIC,
            model_dir=tmp_path / "model",
        )  # fmt: skip
    assert not (tmp_path / "model").exists() and ledger.size() == before


def test_a_foreign_row_aborts_even_in_a_domestic_partition(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    path = approved_package(registry, tmp_path)
    frame = pseudonymised(raw_events(2)).assign(residency=DOMESTIC)
    frame.loc[5, "residency"] = "FR"
    with pytest.raises(NonDomesticDataError, match="1 of 600 rows"):
        train_from_package(
            registry, path, [TrainingPartition(frame, 0, 599, DOMESTIC)], ledger,
            domestic=DOMESTIC, model_dir=tmp_path / "model",
        )  # fmt: skip


def test_raw_columns_are_refused(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    path = approved_package(registry, tmp_path)
    frame = pseudonymised(raw_events()).assign(precise_location="52.5,13.4")
    with pytest.raises(LineageError, match="not pseudonymised"):
        train_from_package(
            registry, path, [TrainingPartition(frame, 0, 1, DOMESTIC)], ledger,
            domestic=DOMESTIC, model_dir=tmp_path / "model",
        )  # fmt: skip


def test_an_unapproved_package_cannot_train(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    path = make_package(tmp_path)
    with pytest.raises(NotApprovedError):
        train_from_package(
            registry, path, partitions(), ledger, domestic=DOMESTIC, model_dir=tmp_path / "m"
        )
    registry.approve(path, "custodian:alice")
    registry.reject(path, "custodian:bob", "withdrawn")
    with pytest.raises(NotApprovedError):
        train_from_package(
            registry, path, partitions(), ledger, domestic=DOMESTIC, model_dir=tmp_path / "m"
        )
    assert "training_run" not in kinds(ledger)


def test_policy_decisions_are_asked_and_named_in_the_record(tmp_path: Path) -> None:
    sink = MemorySink()
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    registry = PackageRegistry(engine=engine, sink=sink)
    registry.trust_key(licensor_keys()[1], by="custodian:alice")
    path = approved_package(registry, tmp_path)
    with PolicyPoint(sink=sink, hasher=HASHER, domestic=DOMESTIC, engine=engine) as policy:
        trainer = Principal("trainer", Role.SERVICE, DOMESTIC)
        _, record = train_from_package(
            registry, path, partitions(), sink, domestic=DOMESTIC, model_dir=tmp_path / "m",
            authorizer=policy, principal=trainer,
        )  # fmt: skip
        assert len(record.policy_decisions) == 2
        decided = [decode_record(sink.entries[i]) for i in record.policy_decisions]
        assert [(d["kind"], d["decision"], d["action"]) for d in decided] == [
            ("decision", "allow", "train")
        ] * 2
        abroad = Principal("trainer", Role.SERVICE, "FR")
        with pytest.raises(AccessDenied):
            train_from_package(
                registry, path, partitions(), sink, domestic=DOMESTIC,
                model_dir=tmp_path / "m2", authorizer=policy, principal=abroad,
            )  # fmt: skip
    engine.dispose()


def test_holdout_evaluation_is_recorded(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    path = approved_package(registry, tmp_path)
    test = pseudonymised(raw_events(9, n=100))
    _, record = train_from_package(
        registry, path, partitions(), ledger, domestic=DOMESTIC, model_dir=tmp_path / "m",
        evaluate=holdout_evaluation(test, ks=(10,)),
    )  # fmt: skip
    assert record.evaluation["protocol"] == "holdout"
    assert 0.0 <= record.evaluation["recall@10"] <= 1.0


def test_the_model_directory_must_be_new(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    path = approved_package(registry, tmp_path)
    (tmp_path / "m").mkdir()
    with pytest.raises(LineageError, match="exists"):
        train_from_package(
            registry, path, partitions(), ledger, domestic=DOMESTIC, model_dir=tmp_path / "m"
        )


def test_initial_weights_are_trained_on_not_reset(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    path = make_package(tmp_path, weights_from=pseudonymised(raw_events(5)))
    registry.approve(path, "custodian:alice")
    model, _ = train_from_package(
        registry, path, partitions(), ledger, domestic=DOMESTIC, model_dir=tmp_path / "m"
    )
    known = pseudonymised(raw_events(5))["user_id"].unique()[:3]
    assert (model.users.rows(known) >= 0).all()  # users of the initial weights are still there


# ----------------------------------------------------------------------------- manifests and hashes


def test_manifest_and_frame_digests_are_canonical() -> None:
    frame = pseudonymised(raw_events())
    shuffled = frame[list(reversed(frame.columns))]
    assert frame_digest(frame) == frame_digest(shuffled)  # column order does not matter
    changed = frame.copy()
    changed.loc[0, "watch_ms"] += 1
    assert frame_digest(changed) != frame_digest(frame)
    part = TrainingPartition(frame, 0, 599, DOMESTIC).partition(DOMESTIC)
    manifest = DataManifest(DOMESTIC, (part,))
    assert manifest.digest() == DataManifest.from_json(manifest.to_json()).digest()
    other = DataManifest(DOMESTIC, (Partition(**{**part.to_json(), "rows": 1}),))
    assert other.digest() != manifest.digest()


def test_require_domestic_names_every_foreign_partition() -> None:
    parts = tuple(
        Partition("log", i, i, residency, 1, "0" * 64) for i, residency in enumerate("AB")
    )
    with pytest.raises(NonDomesticDataError, match=r"log 0-0 \(A\), log 1-1 \(B\)"):
        DataManifest("US", parts).require_domestic("US")


def test_model_hash_is_sha256sum_of_sorted_sha256sum_lines(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.npz").write_bytes(b"\x00\x01")
    (tmp_path / "a.json").write_text("{}")
    lines = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {name}\n"
        for name, p in sorted((p.relative_to(tmp_path).as_posix(), p) for p in
                              [tmp_path / "a.json", tmp_path / "b" / "x.npz"])
    )  # fmt: skip
    assert model_hash(tmp_path) == hashlib.sha256(lines.encode()).hexdigest()


def test_model_hash_agrees_with_coreutils(tmp_path: Path) -> None:
    (tmp_path / "m" / "w").mkdir(parents=True)
    (tmp_path / "m" / "recommender.json").write_text('{"a": 1}')
    (tmp_path / "m" / "w" / "state.npz").write_bytes(bytes(range(256)))
    script = "cd m && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum | sha256sum"
    try:
        out = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs bash, find, sort and sha256sum")
    assert out.split()[0] == model_hash(tmp_path / "m")


def test_record_training_run_checks_its_input() -> None:
    manifest = DataManifest(DOMESTIC, ())
    with pytest.raises(LineageError, match="package_id"):
        record_training_run(MemorySink(), "abc", manifest, "v", "0" * 64, {})
    with pytest.raises(LineageError, match="not JSON"):
        record_training_run(MemorySink(), "0" * 64, manifest, "v", "0" * 64, {"x": object()})
    sink = MemorySink()
    record = record_training_run(sink, "0" * 64, manifest, "v", "1" * 64, {"auc": float("nan")})
    assert record.evaluation == {"auc": None} and sink.records("training_run")


def test_code_version_names_the_release() -> None:
    assert code_version().startswith(trustfeed.__version__)


# ----------------------------------------------------------------------------- online


def test_online_lineage_chains_snapshots_back_to_the_package(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    package = registry.verify(approved_package(registry, tmp_path))
    model = registry.build_model(package)
    lineage = OnlineLineage.for_package(registry, package, ledger, domestic=DOMESTIC)
    events = raw_events(3)
    hashes = []
    for step, (start, stop) in enumerate([(0, 200), (200, 400), (400, 600)]):
        batch = pseudonymised(events.iloc[start:stop])
        lineage.admit(batch, first=start, last=stop - 1, residency=DOMESTIC, key_version=1)
        model.partial_fit(batch)
        model.save(tmp_path / f"snap{step}")
        record = lineage.record(tmp_path / f"snap{step}")
        assert record is not None
        hashes.append(record.model_hash)
    assert lineage.record(tmp_path / "snap2") is None  # nothing new since the last one
    report = trace_lineage(ledger, hashes[-1])
    assert report.problems == [] and report.run.parent_model == hashes[1]
    assert report.parent_index is not None and report.parent_index in report.included
    assert trace_lineage(ledger, hashes[0]).run.parent_model is None


def test_online_lineage_refuses_a_foreign_batch_before_training(custody, tmp_path) -> None:
    ledger, registry = custody
    package = registry.verify(approved_package(registry, tmp_path))
    lineage = OnlineLineage.for_package(registry, package, ledger, domestic=DOMESTIC)
    batch = pseudonymised(raw_events().iloc[:10])
    with pytest.raises(NonDomesticDataError):
        lineage.admit(batch, first=0, last=9, residency="FR")
    assert lineage.record(tmp_path) is None


def test_online_lineage_needs_an_approved_package(custody, tmp_path: Path) -> None:
    ledger, registry = custody
    with pytest.raises(NotApprovedError):
        OnlineLineage.for_package(
            registry, Package.open(make_package(tmp_path)), ledger, domestic=DOMESTIC
        )


def test_frame_digest_treats_missing_values_alike() -> None:
    a = pd.DataFrame({"x": [1.0, float("nan")], "e": pd.Series(["view", None], dtype="string")})
    b = pd.DataFrame({"x": [1.0, None], "e": ["view", None]})
    assert frame_digest(a) == frame_digest(b)

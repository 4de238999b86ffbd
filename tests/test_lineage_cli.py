"""``trustfeed audit lineage MODEL_HASH``: what an auditor sees, and when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.test_package_support import (
    DOMESTIC,
    licensor_keys,
    make_package,
    pseudonymised,
    raw_events,
)
from typer.testing import CliRunner

from trustfeed.cli import app
from trustfeed.custody.ledger import Ledger, generate_signing_key
from trustfeed.recommend.package import (
    DataManifest,
    Package,
    PackageRegistry,
    Partition,
    TrainingPartition,
    record_training_run,
    train_from_package,
)
from trustfeed.storage import open_engine

runner = CliRunner()
ORIGIN = "trustfeed.example/ledger"


@pytest.fixture
def world(tmp_path: Path, database_url: str):
    """A store where an approved package trained one model; the ledger signs checkpoints."""
    signer, verifier = generate_signing_key(ORIGIN)
    (tmp_path / "ledger.pub").write_text(verifier + "\n")
    engine = open_engine(database_url)
    with Ledger.open(database_url, signing_key=signer) as ledger:
        registry = PackageRegistry(engine=engine, sink=ledger)
        registry.trust_key(licensor_keys()[1], by="custodian:alice")
        path = make_package(tmp_path)
        registry.approve(path, "custodian:alice")
        events = raw_events(4)
        parts = [
            TrainingPartition(pseudonymised(events.iloc[:300]), 0, 299, DOMESTIC, key_version=1),
            TrainingPartition(pseudonymised(events.iloc[300:]), 300, 599, DOMESTIC),
        ]
        _, record = train_from_package(
            registry, path, parts, ledger, domestic=DOMESTIC, model_dir=tmp_path / "model"
        )
        yield {
            "url": database_url, "ledger": ledger, "registry": registry, "record": record,
            "pub": tmp_path / "ledger.pub", "package": Package.open(path),
        }  # fmt: skip
    engine.dispose()


def lineage(model_hash: str, url: str, *extra: object):
    return runner.invoke(
        app, ["audit", "lineage", model_hash, "--store", url, *(str(e) for e in extra)]
    )


def test_lineage_traces_the_model(world) -> None:
    record = world["record"]
    result = lineage(record.model_hash, world["url"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        f"model            {record.model_hash}",
        f"training run     ledger entry {record.ledger_index}",
        f"package          {world['package'].id}",
        "  name           example-ranker 1.0.0",
        "  approved       by custodian:alice at ",
        f"(ledger entry {record.package_approval})",
        "  signed by      licensor.example/algo",
        "  since then     no later decision: still approved",
        f"data manifest    sha256 {record.data_manifest_hash} (recomputed: matches)",
        "  partitions     2, 600 rows, all domestic (US)",
        f"  log 0-299      US  rows 300  sha256 {record.data_manifest.partitions[0].sha256}"
        "  key v1",
        "  log 300-599    US  rows 300",
        f"code version     {record.code_version}",
        "evaluation       items: ",
        "                 rows: 600",
        "parent model     none (trained from the package)",
        f"inclusion        entries {record.package_approval}, {record.ledger_index} included "
        f"in the tree of size {world['ledger'].size()}",
        "(the current root)",
    ):
        assert text in out, out


def test_lineage_against_a_signed_checkpoint(world) -> None:
    record = world["record"]
    world["ledger"].checkpoint()
    result = lineage(record.model_hash, world["url"], "--public-key", world["pub"])
    assert result.exit_code == 0, result.output
    assert f"(the checkpoint signed by {ORIGIN})" in result.stdout
    world["registry"].reject(world["package"].id, "custodian:bob", "drifted")
    later = lineage(record.model_hash, world["url"], "--public-key", world["pub"])
    assert later.exit_code == 0, later.output
    assert "since then     rejected by custodian:bob" in later.stdout and "drifted" in later.stdout


def test_entries_newer_than_the_checkpoint_are_named(world, tmp_path: Path) -> None:
    world["ledger"].checkpoint()
    record = record_training_run(
        world["ledger"], world["package"].id, world["record"].data_manifest, "v", "e" * 64, {},
        package_approval=world["record"].package_approval,
    )  # fmt: skip
    result = lineage(record.model_hash, world["url"], "--public-key", world["pub"])
    assert result.exit_code == 0, result.output
    assert f"entries {record.ledger_index} are newer than that checkpoint" in result.stdout


def test_a_tampered_entry_fails_inclusion(world) -> None:
    record = world["record"]
    engine = open_engine(world["url"])
    with engine.begin() as conn:
        data = conn.execute(
            sa.text("SELECT data FROM ledger_entries WHERE idx = :i"), {"i": record.ledger_index}
        ).scalar_one()
        forged = bytes(data).replace(b'"rows":600', b'"rows":6000')
        assert forged != bytes(data)
        conn.execute(
            sa.text("UPDATE ledger_entries SET data = :d WHERE idx = :i"),
            {"d": forged, "i": record.ledger_index},
        )
    engine.dispose()
    result = lineage(record.model_hash, world["url"])
    assert result.exit_code == 1
    assert f"verification FAILED (first bad entry: {record.ledger_index})" in result.stderr


def test_a_run_on_foreign_data_or_without_approval_fails(world) -> None:
    foreign = DataManifest(DOMESTIC, (Partition("log", 0, 9, "FR", 10, "0" * 64),))
    bad = record_training_run(world["ledger"], world["package"].id, foreign, "v", "f" * 64, {})
    result = lineage(bad.model_hash, world["url"])
    assert result.exit_code == 1
    assert "PROBLEMS:" in result.stdout and "resides in 'FR'" in result.stdout
    assert "approved       NO" in result.stdout
    assert "the run names no package approval" in result.stderr


def test_an_approval_of_another_package_does_not_count(world) -> None:
    record = world["record"]
    other = record_training_run(
        world["ledger"], "a" * 64, record.data_manifest, "v", "c" * 64, {},
        package_approval=record.package_approval,
    )  # fmt: skip
    result = lineage(other.model_hash, world["url"])
    assert result.exit_code == 1
    assert f"entry {record.package_approval} is not a decision on package" in result.stderr


@pytest.mark.parametrize(
    ("model_hash", "url", "code", "message"),
    [
        ("0" * 64, None, 1, "no training run in the ledger produced model"),
        ("xyz", None, 2, "not a model hash"),
        ("0" * 64, "sqlite:///MISSING.db", 2, "no SQLite database"),
        ("0" * 64, "nosuch://x", 2, "unknown storage scheme"),
    ],
)
def test_bad_input(world, tmp_path: Path, model_hash, url, code, message) -> None:
    url = (url or world["url"]).replace("MISSING", str(tmp_path / "missing"))
    result = lineage(model_hash, url)
    assert result.exit_code == code, result.output
    assert message in result.stderr and "Traceback" not in result.output

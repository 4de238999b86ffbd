"""Algorithm packages: build, sign, verify, refuse modified or unsigned ones, review, decide.

Storage tests run on SQLite and PostgreSQL (``database_url``); the byte-flip
property test runs on in-memory SQLite and an in-memory ledger for speed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.test_package_support import (
    LICENSOR,
    config,
    licensor_keys,
    make_package,
    memory_registry,
    pseudonymised,
    raw_events,
)

from trustfeed.custody import decode_record
from trustfeed.custody.ledger import Ledger
from trustfeed.recommend import Recommender
from trustfeed.recommend.package import (
    IntegrityError,
    NotApprovedError,
    Package,
    PackageError,
    PackageRegistry,
    SignatureError,
    build_package,
    generate_licensor_key,
)
from trustfeed.storage import open_engine


@pytest.fixture
def registry(database_url: str):
    with PackageRegistry.open(database_url) as reg:
        reg.trust_key(licensor_keys()[1], by="custodian:alice")
        yield reg


def ledger_records(url: str, kind: str | None = None) -> list[dict]:
    with Ledger.open(url, create=False) as ledger:
        records = [decode_record(e) for e in ledger.entries(0, ledger.size())]
    return [r for r in records if kind is None or r["kind"] == kind]


# ----------------------------------------------------------------------------- build and sign


def test_package_id_is_the_manifest_hash_and_lists_every_file(tmp_path: Path) -> None:
    path = make_package(tmp_path, weights_from=pseudonymised(raw_events()))
    package = Package.open(path)
    manifest = (path / "manifest.json").read_bytes()
    assert package.id == hashlib.sha256(manifest).hexdigest()
    listed = {e["path"]: e["sha256"] for e in json.loads(manifest)["files"]}
    on_disk = {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in path.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "signature.note")
    }
    assert listed == on_disk and "config.json" in listed
    assert any(name.startswith("weights/") for name in listed)


def test_signing_does_not_change_the_id(tmp_path: Path) -> None:
    path = make_package(tmp_path, sign=False)
    before = Package.open(path)
    assert before.signature is None
    from trustfeed.recommend.package import sign_package

    after = sign_package(path, licensor_keys()[0])
    assert after.id == before.id and after.id in (after.signature or "")


def test_verify_accepts_a_package_signed_by_the_trusted_key(registry, tmp_path: Path) -> None:
    path = make_package(tmp_path)
    assert registry.verify(path).id == Package.open(path).id


def test_unsigned_package_is_refused(registry, tmp_path: Path) -> None:
    path = make_package(tmp_path, sign=False)
    with pytest.raises(SignatureError, match="not signed"):
        registry.verify(path)


def test_package_signed_by_an_unknown_key_is_refused(registry, tmp_path: Path) -> None:
    stranger, _ = generate_licensor_key("someone.else/keys")
    path = make_package(tmp_path, signer=stranger)
    with pytest.raises(SignatureError, match="no signature from a known key"):
        registry.verify(path)


def test_same_name_but_another_key_is_refused(registry, tmp_path: Path) -> None:
    # An impostor using the licensor's name: the key id differs, so it is unknown.
    impostor, _ = generate_licensor_key(LICENSOR)
    path = make_package(tmp_path, signer=impostor)
    with pytest.raises(SignatureError):
        registry.verify(path)


def test_nothing_verifies_before_a_key_is_trusted(tmp_path: Path) -> None:
    registry, _ = memory_registry(trust=False)
    with pytest.raises(SignatureError, match="no licensor key is trusted"):
        registry.verify(make_package(tmp_path))


def test_a_signature_moved_to_another_package_is_refused(registry, tmp_path: Path) -> None:
    first = make_package(tmp_path, "a")
    second = make_package(tmp_path, "b", config(version="2.0.0"), sign=False)
    shutil.copy(first / "signature.note", second / "signature.note")
    with pytest.raises(SignatureError):
        registry.verify(second)


# ----------------------------------------------------------------------------- modified bytes


@pytest.fixture(scope="module")
def signed_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("flip")
    path = make_package(tmp, weights_from=pseudonymised(raw_events()))
    return Package.open(path).all_files()


@pytest.fixture(scope="module")
def flip_registry() -> PackageRegistry:
    return memory_registry()[0]


def test_the_unmodified_files_verify(signed_files, flip_registry) -> None:
    assert flip_registry.verify(Package.from_files(signed_files)).signature is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_flipped_byte_anywhere_is_refused(signed_files, flip_registry, data) -> None:
    name = data.draw(st.sampled_from(sorted(signed_files)), label="file")
    content = signed_files[name]
    position = data.draw(st.integers(0, len(content) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    flipped = bytearray(content)
    flipped[position] ^= mask
    files = {**signed_files, name: bytes(flipped)}
    with pytest.raises(PackageError):
        flip_registry.verify(Package.from_files(files))


def test_flipped_byte_on_disk_is_refused_with_the_file_named(registry, tmp_path: Path) -> None:
    path = make_package(tmp_path)
    config_file = path / "config.json"
    data = bytearray(config_file.read_bytes())
    data[10] ^= 0x01
    config_file.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"config\.json was modified"):
        registry.verify(path)


def test_extra_missing_and_reformatted_files_are_refused(tmp_path: Path) -> None:
    path = make_package(tmp_path)
    (path / "notes.txt").write_text("extra")
    with pytest.raises(IntegrityError, match=r"not in the manifest: notes\.txt"):
        Package.open(path)
    (path / "notes.txt").unlink()
    manifest = path / "manifest.json"
    original = manifest.read_bytes()
    manifest.write_text(json.dumps(json.loads(original), indent=2))
    with pytest.raises(IntegrityError, match="canonical"):
        Package.open(path)
    manifest.write_bytes(original)
    (path / "config.json").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        Package.open(path)


def test_manifest_paths_cannot_escape_the_package(tmp_path: Path) -> None:
    path = make_package(tmp_path, sign=False)
    manifest = json.loads((path / "manifest.json").read_bytes())
    manifest["files"].insert(0, {"path": "../x", "sha256": "0" * 64, "size": 0})
    from trustfeed.recommend.package import canonical_json

    files = Package.open(path).all_files() | {"manifest.json": canonical_json(manifest)}
    with pytest.raises(IntegrityError, match="bad file path"):
        Package.from_files(files)


def test_symlinks_are_refused(tmp_path: Path) -> None:
    path = make_package(tmp_path, sign=False)
    (path / "link").symlink_to(path / "config.json")
    with pytest.raises(IntegrityError, match="link"):
        Package.open(path)


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_class": "os.system"}, "unknown model class"),
        ({"hyperparameters": {"window": 0}}, "hyper-parameters the engine refuses"),
        ({"hyperparameters": {"no_such_knob": 1}}, "hyper-parameters the engine refuses"),
        ({"ranking_weights": {"telepathy": 1.0}}, "unknown ranking weights"),
        (
            {"ranking_weights": {"ann": 0.1}, "hyperparameters": {"ann_weight": 0.2}},
            "both as ranking weight and hyper-parameter",
        ),
        ({"features": ["item2item", "precise_location"]}, "does not compute"),
        ({"features": ["item2item"]}, "omits features"),
        ({"format": "something/v9"}, "unknown format"),
        ({"extra": 1}, "not a valid algorithm configuration"),
    ],
)
def test_invalid_configuration_is_refused_at_build(tmp_path: Path, change, message) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(config(**change)))
    with pytest.raises(PackageError, match=message):
        build_package(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_weights_saved_with_another_configuration_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "src"
    events = pseudonymised(raw_events())
    Recommender(seed=7, embedding_dim=0, window=5).fit(events).save(source / "weights")
    (source / "config.json").write_text(json.dumps(config()))
    with pytest.raises(PackageError, match="another seed or configuration"):
        build_package(source, tmp_path / "out")


def test_build_refuses_stray_files_and_an_existing_output(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(config()))
    (source / "secrets.env").write_text("x")
    with pytest.raises(PackageError, match=r"only config\.json"):
        build_package(source, tmp_path / "out")
    (source / "secrets.env").unlink()
    (tmp_path / "out").mkdir()
    with pytest.raises(PackageError, match="exists"):
        build_package(source, tmp_path / "out")


# ----------------------------------------------------------------------------- review


def test_first_review_has_no_baseline_and_lists_everything(registry, tmp_path: Path) -> None:
    review = registry.review(make_package(tmp_path))
    text = review.render()
    assert review.baseline is None and "no package is approved yet" in text
    assert f"signed by {LICENSOR}" in text and "not yet decided" in text
    assert "+ window: 30" in text and "+ following: 0.2" in text


def test_review_diffs_against_the_last_approved_package(registry, tmp_path: Path) -> None:
    events = pseudonymised(raw_events())
    v1 = make_package(tmp_path, "v1", weights_from=events)
    first = registry.approve(v1, "custodian:alice")
    v2_conf = config(
        version="1.1.0",
        hyperparameters={"embedding_dim": 0, "window": 60, "transition": 0.3},
        ranking_weights={"following": 0.5, "trending": 0.1},
    )
    v2 = make_package(tmp_path, "v2", v2_conf, weights_from=events)
    review = registry.review(v2)
    assert review.baseline is not None and review.baseline.package_id == first.package_id
    hyper = {(c.key, c.kind, c.old, c.new) for c in review.section("hyper-parameters")}
    assert hyper == {
        ("window", "changed", 30, 60),
        ("transition", "added", None, 0.3),
        ("recency", "removed", 6.0, None),
    }
    weights = {(c.key, c.kind) for c in review.section("ranking weights")}
    assert weights == {("following", "changed"), ("trending", "added")}
    changed_files = {c.key for c in review.section("initial weights") if c.kind == "changed"}
    assert "weights/recommender.json" in changed_files
    text = review.render()
    for line in (
        "~ window: 30 → 60",
        "+ transition: 0.3   (engine default: 0.0)",
        "- recency: 6.0   (the engine default 6.0 applies again)",
        "~ following: 0.2 → 0.5",
        f"baseline  {first.package_id}  example-ranker 1.0.0, approved by custodian:alice",
        "unchanged: model class, seed, features",
    ):
        assert line in text, text


def test_review_shows_feature_and_weight_file_changes(registry, tmp_path: Path) -> None:
    registry.approve(make_package(tmp_path, "v1"), "custodian:alice")
    order = list(reversed(config()["features"]))
    v2 = make_package(tmp_path, "v2", config(version="2", features=order), weights_from=None)
    review = registry.review(v2)
    assert [c.key for c in review.section("features")] == ["order"]
    assert review.section("initial weights") == []
    events = pseudonymised(raw_events())
    v3 = make_package(tmp_path, "v3", config(version="3"), weights_from=events)
    added = {c.key for c in registry.review(v3).section("initial weights")}
    assert "weights/state.npz" in added


# ----------------------------------------------------------------------------- decisions


def test_approve_and_reject_land_in_the_ledger_and_the_table(
    registry, database_url: str, tmp_path: Path
) -> None:
    path = make_package(tmp_path)
    package_id = Package.open(path).id
    assert not registry.approved(package_id)
    approval = registry.approve(path, "custodian:alice")
    assert registry.approved(package_id) and approval.signed_by == (LICENSOR,)
    rejection = registry.reject(path, "custodian:bob", "ranks outrage too high")
    assert not registry.approved(package_id)
    records = ledger_records(database_url)
    assert [r["kind"] for r in records] == [
        "package_key_trusted",
        "package_decision",
        "package_decision",
    ]
    assert records[0]["key_name"] == LICENSOR and records[0]["by"] == "custodian:alice"
    assert [(r["decision"], r["by"], r["package"]) for r in records[1:]] == [
        ("approved", "custodian:alice", package_id),
        ("rejected", "custodian:bob", package_id),
    ]
    assert records[2]["reason"] == "ranks outrage too high"
    assert [d.ledger_index for d in registry.decisions()] == [
        approval.ledger_index,
        rejection.ledger_index,
    ]
    engine = open_engine(database_url)
    try:
        from sqlalchemy import text

        with engine.connect() as conn:
            rows = conn.execute(text("SELECT decision FROM package_decisions ORDER BY seq")).all()
        assert [r[0] for r in rows] == ["approved", "rejected"]
    finally:
        engine.dispose()


def test_decisions_are_checked(registry, tmp_path: Path) -> None:
    path = make_package(tmp_path)
    with pytest.raises(PackageError, match="needs a reason"):
        registry.reject(path, "custodian:bob", "  ")
    with pytest.raises(PackageError, match="who decides"):
        registry.approve(path, " ")
    registry.approve(path, "custodian:alice")
    with pytest.raises(PackageError, match="already approved"):
        registry.approve(path, "custodian:alice")
    registry.reject(Package.open(path).id, "custodian:bob", "withdrawn")  # by id
    with pytest.raises(PackageError, match="already rejected"):
        registry.reject(path, "custodian:bob", "again")
    assert registry.approve(path, "custodian:carol").approved  # re-approved after a re-review


def test_unsigned_package_cannot_be_approved_but_can_be_rejected(registry, tmp_path) -> None:
    path = make_package(tmp_path, sign=False)
    with pytest.raises(SignatureError):
        registry.approve(path, "custodian:alice")
    assert registry.reject(path, "custodian:alice", "unsigned").decision == "rejected"


def test_trusting_a_key_twice_or_a_private_key_is_refused(registry) -> None:
    with pytest.raises(PackageError, match="already trusted"):
        registry.trust_key(licensor_keys()[1], by="custodian:alice")
    with pytest.raises(SignatureError, match="private signer key"):
        registry.trust_key(licensor_keys()[0], by="custodian:alice")


# ----------------------------------------------------------------------------- models


def test_only_an_approved_package_builds_a_model(registry, tmp_path: Path) -> None:
    path = make_package(tmp_path)
    with pytest.raises(NotApprovedError, match="never approved"):
        registry.build_model(path)
    registry.approve(path, "custodian:alice")
    model = registry.build_model(path)
    assert isinstance(model, Recommender)
    assert model.seed == 7 and model.config.following_weight == 0.2
    assert model.config.embedding_dim == 0
    registry.reject(path, "custodian:bob", "withdrawn")
    with pytest.raises(NotApprovedError, match="rejected by custodian:bob"):
        registry.build_model(path)


def test_an_approved_package_modified_afterwards_is_refused(registry, tmp_path: Path) -> None:
    path = make_package(tmp_path)
    registry.approve(path, "custodian:alice")
    conf = path / "config.json"
    conf.write_text(conf.read_text().replace('"window": 30', '"window": 31'))
    with pytest.raises(IntegrityError):
        registry.require_approved(path)
    with pytest.raises(IntegrityError):
        registry.build_model(path)


def test_initial_weights_are_loaded_from_the_verified_bytes(registry, tmp_path: Path) -> None:
    events = pseudonymised(raw_events())
    path = make_package(tmp_path, weights_from=events)
    registry.approve(path, "custodian:alice")
    package = registry.verify(path)
    shutil.rmtree(path)  # the model comes from the checked bytes, not the directory
    model = registry.build_model(package)
    reference = Recommender(seed=7, embedding_dim=0, window=30, recency=6.0).fit(events)
    users = events["user_id"].unique()[:5]
    np.testing.assert_array_equal(model.recommend(users, k=5), reference.recommend(users, k=5))


def test_current_is_the_last_approved_package_from_the_store(registry, tmp_path: Path) -> None:
    assert registry.current() is None
    v1 = make_package(tmp_path, "v1")
    v2 = make_package(tmp_path, "v2", config(version="2.0.0"))
    registry.approve(v1, "custodian:alice")
    registry.approve(v2, "custodian:alice")
    shutil.rmtree(v2)
    current = registry.current()
    assert current is not None and current.version == "2.0.0"
    registry.reject(current.id, "custodian:bob", "regression")
    fallback = registry.current()
    assert fallback is not None and fallback.version == "1.0.0"

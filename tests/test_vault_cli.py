"""``trustfeed user export|erase`` through the real policy point and ledger."""

from __future__ import annotations

import json
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trustfeed.custody import (
    AccessRequest,
    Action,
    DataClass,
    Decision,
    Principal,
    Role,
    decode_record,
)
from trustfeed.custody._keyfile import CustodianKeys, generate_keyfile
from trustfeed.custody.vault import Vault, record_request
from trustfeed.custody.vault._cli import user_app
from trustfeed.storage import open_engine

ALICE = "alice-7f3a"
runner = CliRunner()


class _AllowAll:
    """Seeds the store directly; what is under test is the CLI's own boundary."""

    def decide(self, request: AccessRequest) -> Decision:
        return Decision(request, True, ("test seed",), "0" * 64, 0)

    def enforce(self, request: AccessRequest) -> Decision:
        return self.decide(request)


class _NullSink:
    def append(self, entry: bytes) -> int:
        return 0

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        return [0] * len(entries)


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "custodian.json"
    generate_keyfile(path)
    return path


@pytest.fixture
def store(database_url: str, keyfile: Path) -> str:
    from trustfeed.custody._keyfile import load_keyfile

    keys: CustodianKeys = load_keyfile(keyfile)
    engine = open_engine(database_url)
    vault = Vault(
        engine,
        authorizer=_AllowAll(),
        sink=_NullSink(),
        keks=keys.keks,
        current_kek=keys.current_kek,
        owner_hasher=keys.hasher(),
    )
    writer = Principal("ingest", Role.OPERATOR, "US")
    for record_id, data_class, data in [
        ("m1", DataClass.MESSAGES, b"meet at 8"),
        ("w1", DataClass.WATCH_HISTORY, b'{"item": 1001}'),
    ]:
        request = record_request(
            writer,
            Action.WRITE,
            owner=ALICE,
            record_id=record_id,
            data_class=data_class,
            residency="US",
            purpose="ingest",
        )
        vault.put(
            request, data, media_type="application/json" if data[:1] == b"{" else "text/plain"
        )
    engine.dispose()
    return database_url


def ledger_records(url: str) -> list[dict]:
    from trustfeed.custody.ledger import Ledger

    with Ledger.open(url) as ledger:
        return [decode_record(e) for e in ledger.entries(0, ledger.size())]


def invoke(*args: str):
    return runner.invoke(user_app, list(args))


def test_a_user_exports_their_own_data(store: str, keyfile: Path) -> None:
    result = invoke("export", "--store", store, "--user", ALICE, "--keys", str(keyfile))
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    assert bundle["subject"] == ALICE
    assert {r["id"]: r["data"] for r in bundle["records"]} == {
        "m1": "meet at 8",
        "w1": {"item": 1001},
    }
    records = ledger_records(store)
    decisions = [r for r in records if r["kind"] == "decision"]
    assert [(d["action"], d["decision"]) for d in decisions] == [("export", "allow")]
    assert records[bundle["decision"]["ledger_index"]] == decisions[0]


def test_export_to_a_file_is_private_and_never_overwrites(
    store: str, keyfile: Path, tmp_path: Path
) -> None:
    out = tmp_path / "alice.json"
    args = ["export", "--store", store, "--user", ALICE, "--keys", str(keyfile), "--out", str(out)]
    assert invoke(*args).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["data_classes"] == ["messages", "watch_history"]
    again = invoke(*args)
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_a_user_erases_themself_and_then_nothing_is_left(store: str, keyfile: Path) -> None:
    base = ["--store", store, "--user", ALICE, "--keys", str(keyfile)]
    result = invoke("erase", *base, "--by", ALICE, "--justification", "closing my account")
    assert result.exit_code == 0, result.output
    assert "erased alice-7f3a: 2 records (messages, watch_history)" in result.stdout
    after = invoke("export", *base)
    assert after.exit_code == 1 and "erased" in after.stderr
    assert "Traceback" not in after.output
    records = ledger_records(store)
    erasure = [r for r in records if r["kind"] == "erasure"]
    assert len(erasure) == 1 and erasure[0]["records"] == 2
    assert ALICE not in json.dumps(erasure)
    decision = next(r for r in records if r["kind"] == "decision" and r["action"] == "erase")
    assert decision["owner"] == erasure[0]["owner"]  # the auditor can join them


@pytest.mark.parametrize(
    "who",
    [
        ["--by", "mallory"],  # another user
        ["--as", "custodian", "--by", "custodian-ops"],  # a custodian without a grant
    ],
)
def test_anyone_else_is_denied_and_nothing_changes(
    store: str, keyfile: Path, who: list[str]
) -> None:
    base = ["--store", store, "--user", ALICE, "--keys", str(keyfile)]
    for command in (["export", *base, *who], ["erase", *base, *who, "--justification", "x"]):
        result = invoke(*command)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: access denied")
        assert "Traceback" not in result.output
    assert invoke("export", *base).exit_code == 0  # Alice's data is still there
    denials = [r for r in ledger_records(store) if r.get("decision") == "deny"]
    assert len(denials) == 2


def test_bad_input_is_one_line_and_exit_1(keyfile: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    cases = [
        (
            ["export", "--store", store, "--user", ALICE, "--keys", str(tmp_path / "no.json")],
            "not found",
        ),
        (
            ["export", "--store", "mysql://x/y", "--user", ALICE, "--keys", str(keyfile)],
            "unknown storage",
        ),
        (
            [
                "export",
                "--store",
                store,
                "--user",
                ALICE,
                "--keys",
                str(keyfile),
                "--as",
                "custodian",
            ],
            "needs --by",
        ),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1
        assert "Traceback" not in result.output
    loose = tmp_path / "loose.json"
    loose.write_text(keyfile.read_text())
    loose.chmod(0o644)
    result = invoke("export", "--store", store, "--user", ALICE, "--keys", str(loose))
    assert result.exit_code == 1 and "chmod 600" in result.stderr


def test_erase_needs_who_and_why(keyfile: Path, tmp_path: Path) -> None:
    result = invoke("erase", "--store", "sqlite://", "--user", ALICE, "--keys", str(keyfile))
    assert result.exit_code == 2
    assert "--by" in result.output or "--justification" in result.output

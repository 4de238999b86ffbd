"""``trustfeed package …`` through the real ``trustfeed`` app: the licensor's and the
custodian's whole flow, and one clear line with exit status 1 for every bad input."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from tests.test_package_support import config
from typer.testing import CliRunner

from trustfeed.cli import app
from trustfeed.custody import decode_record
from trustfeed.custody.ledger import Ledger

runner = CliRunner()
KEY_NAME = "licensor.example/algo"


def cli(*args: object):
    return runner.invoke(app, ["package", *(str(a) for a in args)])


def ok(*args: object) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(*args: object) -> str:
    """The command fails with exit 1 and one ``error:`` line, no traceback."""
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    return result.stderr


def source(tmp_path: Path, name: str, **overrides: object) -> Path:
    where = tmp_path / name
    where.mkdir()
    (where / "config.json").write_text(json.dumps(config(**overrides)))
    return where


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    out = ok("keygen", "--name", KEY_NAME, "--out-dir", tmp_path / "keys")
    key, pub = (
        tmp_path / "keys" / "licensor.example_algo.key",
        tmp_path / "keys" / "licensor.example_algo.pub",
    )
    assert str(pub) in out and stat.S_IMODE(key.stat().st_mode) == 0o600
    return key, pub


def test_licensor_and_custodian_flow(tmp_path: Path, keys, database_url: str) -> None:
    key, pub = keys
    package_id = ok("build", source(tmp_path, "src"), "--out", tmp_path / "pkg").strip()
    assert len(package_id) == 64
    assert f"signed {package_id}" in ok("sign", tmp_path / "pkg", "--key", key)
    store = ("--store", database_url)
    assert "trusted licensor.example/algo+" in ok(
        "trust-key", pub, "--by", "custodian:alice", *store
    )
    assert f"verified {package_id}" in ok("verify", tmp_path / "pkg", *store)
    first = ok("review", tmp_path / "pkg", *store)
    assert "baseline  none" in first and "+ window: 30" in first
    assert f"approved {package_id}" in ok(
        "approve", tmp_path / "pkg", "--by", "custodian:alice", *store
    )
    assert "; approved" in ok("verify", tmp_path / "pkg", *store)

    src2 = source(tmp_path, "src2", version="1.1.0", ranking_weights={"following": 0.4})
    ok("build", src2, "--out", tmp_path / "pkg2")
    ok("sign", tmp_path / "pkg2", "--key", key)
    review = ok("review", tmp_path / "pkg2", *store)
    assert f"baseline  {package_id}" in review and "~ following: 0.2 → 0.4" in review
    assert "1 change(s)." in review
    ok("reject", tmp_path / "pkg2", "--by", "custodian:bob", "--reason", "no rationale", *store)
    listing = ok("decisions", *store)
    assert listing.count("\n") == 2 and "rejected" in listing and "no rationale" in listing

    with Ledger.open(database_url, create=False) as ledger:
        records = [decode_record(e) for e in ledger.entries(0, ledger.size())]
    assert [r.get("decision", r["kind"]) for r in records] == [
        "package_key_trusted",
        "approved",
        "rejected",
    ]


def test_refusals_are_one_line_and_exit_1(tmp_path: Path, keys, database_url: str) -> None:
    key, pub = keys
    store = ("--store", database_url)
    ok("build", source(tmp_path, "src"), "--out", tmp_path / "pkg")
    assert "not signed" in fails("approve", tmp_path / "pkg", "--by", "custodian:a", *store)
    ok("trust-key", pub, "--by", "custodian:alice", *store)
    assert "already trusted" in fails("trust-key", pub, "--by", "custodian:alice", *store)
    ok("sign", tmp_path / "pkg", "--key", key)
    conf = tmp_path / "pkg" / "config.json"
    conf.write_text(conf.read_text().replace("7", "8", 1))
    assert "config.json was modified" in fails("verify", tmp_path / "pkg", *store)
    assert "config.json was modified" in fails("review", tmp_path / "pkg", *store)
    assert "modified" in fails("approve", tmp_path / "pkg", "--by", "custodian:a", *store)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "SRC_BAD", "--out", "OUT"], "unknown model class"),
        (["build", "MISSING", "--out", "OUT"], "is not a directory"),
        (["build", "SRC", "--out", "SRC"], "refusing to overwrite"),
        (["sign", "PKG", "--key", "PUB"], "not a signing key"),
        (["sign", "PKG", "--key", "MISSING"], "No such file"),
        (["sign", "MISSING", "--key", "KEY"], "no package at"),
        (["trust-key", "KEY", "--by", "custodian:a", "--store", "URL"], "private signer key"),
        (["trust-key", "MISSING", "--by", "custodian:a", "--store", "URL"], "No such file"),
        (["verify", "PKG", "--store", "nosuch://x"], "unknown storage scheme"),
        (["review", "MISSING", "--store", "URL"], "no package at"),
        (["approve", "PKG", "--by", " ", "--store", "URL"], "who decides"),
        (["reject", "PKG", "--by", "custodian:a", "--reason", "", "--store", "URL"], "reason"),
        (["reject", "ab" * 32, "--by", "custodian:a", "--reason", "x", "--store", "URL"],
         "no approved package"),
        (["keygen", "--name", "bad name", "--out-dir", "DIR"], "bad key name"),
        (["keygen", "--name", KEY_NAME, "--out-dir", "KEYS"], "refusing to overwrite"),
    ],
)  # fmt: skip
def test_bad_input(tmp_path: Path, keys, args: list[str], message: str) -> None:
    key, pub = keys
    ok("build", source(tmp_path, "src"), "--out", tmp_path / "pkg")
    ok("sign", tmp_path / "pkg", "--key", key)
    bad = source(tmp_path, "bad", model_class="subprocess.Popen")
    names = {
        "SRC_BAD": bad, "SRC": tmp_path / "src", "OUT": tmp_path / "out",
        "MISSING": tmp_path / "missing", "PKG": tmp_path / "pkg", "KEY": key, "PUB": pub,
        "URL": f"sqlite:///{tmp_path / 'store.db'}", "DIR": tmp_path / "d",
        "KEYS": key.parent,
    }  # fmt: skip
    assert message in fails(*(names.get(a, a) for a in args))


# ----------------------------------------------------------------------------- docs/packages.md

DOC = Path(__file__).resolve().parents[1] / "docs" / "packages.md"


def doc_commands() -> list[list[str]]:
    """The ``$ trustfeed …`` lines of the doc's console blocks, as argument lists."""
    import re
    import shlex

    calls = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            if line.startswith("$ trustfeed "):
                calls.append(shlex.split(line[2:])[1:])
    return calls


def test_every_command_and_option_in_the_doc_exists() -> None:
    import typer.main

    calls = doc_commands()
    assert len(calls) >= 10, "the doc's commands were not found"
    root = typer.main.get_command(app)
    for words in calls:
        command = root
        for word in words:
            group = getattr(command, "commands", None)
            if group is None:
                break
            assert word in group, f"docs/packages.md: no command {words}"
            command = group[word]
        known = {opt for param in command.params for opt in param.opts}
        for word in words:
            if word.startswith("--"):
                assert word in known, f"docs/packages.md: no option {word} in {words}"


def test_the_doc_walkthrough_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The licensor's and custodian's console blocks, run as shown in an empty directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text(json.dumps(config()))
    walkthrough = [c for c in doc_commands() if c[0] == "package"]
    for words in walkthrough:
        result = runner.invoke(app, words)
        assert result.exit_code == 0, (words, result.output)
    listing = runner.invoke(app, ["package", "decisions", "--store", "sqlite:///custody.db"])
    assert "approved" in listing.stdout and "ranks outrage too high" in listing.stdout

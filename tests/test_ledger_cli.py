"""``trustfeed audit`` (the ``audit_app`` Typer app): exit codes and messages."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from trustfeed.custody.ledger import Ledger
from trustfeed.custody.ledger._cli import audit_app
from trustfeed.storage import open_engine

ORIGIN = "trustfeed.example/ledger"
runner = CliRunner()


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path | str]:
    """Keys made by ``keygen``, and a store with 6 entries and a checkpoint at 5."""
    keys = tmp_path / "keys"
    result = runner.invoke(audit_app, ["keygen", "--name", ORIGIN, "--out-dir", str(keys)])
    assert result.exit_code == 0, result.output
    key, pub = keys / "trustfeed.example_ledger.key", keys / "trustfeed.example_ledger.pub"
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, signing_key=key.read_text()) as led:
        led.append_many([f"entry {i}".encode() for i in range(5)])
        (tmp_path / "cp.txt").write_text(led.checkpoint())
        led.append(b"late")
    return {"url": url, "key": key, "pub": pub, "cp": tmp_path / "cp.txt", "dir": tmp_path}


def _run(*args: str):
    return runner.invoke(audit_app, [str(a) for a in args])


def test_keygen_writes_a_private_signer_key(setup) -> None:
    assert stat.S_IMODE(setup["key"].stat().st_mode) == 0o600
    assert setup["key"].read_text().startswith("PRIVATE+KEY+" + ORIGIN + "+")
    again = _run("keygen", "--name", ORIGIN, "--out-dir", setup["key"].parent)
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_verify_a_good_store(setup) -> None:
    result = _run("verify", "--store", setup["url"], "--public-key", setup["pub"])
    assert result.exit_code == 0, result.output
    assert "ledger verified" in result.output and ORIGIN in result.output
    trusted = _run(
        "verify", "--store", setup["url"], "--public-key", setup["pub"], "--checkpoint", setup["cp"]
    )
    assert trusted.exit_code == 0, trusted.output


def test_verify_names_the_first_bad_entry(setup) -> None:
    engine = open_engine(setup["url"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET data = :d WHERE idx = 3"), {"d": b"forged"})
    engine.dispose()
    result = _run("verify", "--store", setup["url"], "--public-key", setup["pub"])
    assert result.exit_code == 1
    assert "first bad entry: 3" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "URL", "--public-key", "missing.pub"], "cannot read public key file"),
        (["--store", "mysql://x/y", "--public-key", "PUB"], "unknown storage scheme"),
        (["--store", "sqlite:///DIR/none.db", "--public-key", "PUB"], "no SQLite database"),
        (["--store", "URL", "--public-key", "KEY"], "not a verifier key"),
        (
            ["--store", "URL", "--public-key", "PUB", "--checkpoint", "PUB"],
            "not a signed checkpoint",
        ),
    ],
)
def test_verify_bad_input_exits_2_with_one_line(setup, args: list[str], message: str) -> None:
    subst = {"URL": setup["url"], "PUB": str(setup["pub"]), "KEY": str(setup["key"])}
    argv = [subst.get(a, a.replace("DIR", str(setup["dir"]))) for a in args]
    result = _run("verify", *argv)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (setup["dir"] / "none.db").exists(), "a reader must not create a store"


def test_prove_and_verify_proof_offline(setup) -> None:
    result = _run("prove", "--store", setup["url"], "--index", "2", "--size", "5")
    assert result.exit_code == 0, result.output
    proof = json.loads(result.output)
    assert proof["index"] == 2 and proof["size"] == 5 and len(proof["proof"]) == 3
    path = setup["dir"] / "proof.json"
    path.write_text(result.output)
    ok = _run(
        "verify-proof", "--proof", path, "--checkpoint", setup["cp"], "--public-key", setup["pub"]
    )
    assert ok.exit_code == 0 and "entry 2 is included" in ok.output
    proof["proof"][0] = "00" * 32
    path.write_text(json.dumps(proof))
    bad = _run(
        "verify-proof", "--proof", path, "--checkpoint", setup["cp"], "--public-key", setup["pub"]
    )
    assert bad.exit_code == 1 and "does not match the root" in bad.output
    path.write_text("{}")
    junk = _run(
        "verify-proof", "--proof", path, "--checkpoint", setup["cp"], "--public-key", setup["pub"]
    )
    assert junk.exit_code == 2 and "not an inclusion proof" in junk.output


def test_consistency_and_checkpoint_commands(setup) -> None:
    result = _run("consistency", "--store", setup["url"], "--old-size", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["old_size"], data["new_size"]) == (3, 6) and data["proof"]
    shown = _run("checkpoint", "--store", setup["url"])
    assert shown.exit_code == 0 and shown.output == setup["cp"].read_text()
    out_of_range = _run("prove", "--store", setup["url"], "--index", "9")
    assert out_of_range.exit_code == 2 and "outside" in out_of_range.output


def test_entries_lists_json_lines_and_filters_by_kind(setup) -> None:
    with Ledger.open(setup["url"]) as led:
        led.append(b'{"kind":"decision","decision":"deny","v":1}')
    listed = _run("entries", "--store", setup["url"], "--start", "4", "--count", "10")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["index"] for r in rows] == [4, 5, 6]
    assert rows[0]["base64"] == "ZW50cnkgNA==" and rows[2]["record"]["decision"] == "deny"
    only = _run("entries", "--store", setup["url"], "--kind", "decision")
    assert [json.loads(line)["index"] for line in only.output.splitlines()] == [6]
    bad = _run("entries", "--store", setup["url"], "--count", "-1")
    assert bad.exit_code == 2 and "must not be negative" in bad.output

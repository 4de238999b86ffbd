"""``docs/auditing.md`` stays true: its walkthrough runs, and every command it shows exists.

The walkthrough is replayed through the real ``trustfeed`` app (Typer's
CliRunner on ``trustfeed.cli.app``) in ``tmp_path`` with the same relative
``TRUSTFEED_HOME`` and arguments as the page; the messages the page quotes are
checked against what the commands really print.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import textwrap
from collections.abc import Iterator
from contextlib import closing, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from trustfeed.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "auditing.md"
STORE = "sqlite:///custody/custody.db"
KEYS = "custody/keys/custodian.json"
ALICE = "alice-7f3a"
WITNESS = "witness.example/w1"
runner = CliRunner()

_FENCE = re.compile(r"^[ \t]*```(\w*)[ \t]*\n(.*?)^[ \t]*```", re.S | re.M)
_SHELL_STOP = {">", ">>", "|", "&&", "||", ";", "2>&1"}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _blocks(text: str, *languages: str) -> Iterator[str]:
    for match in _FENCE.finditer(text):
        if match.group(1) in languages:
            yield textwrap.dedent(match.group(2))


def _commands(text: str) -> list[str]:
    """Shell commands in the doc: ``$ `` lines of console blocks, every line of bash blocks."""
    commands: list[str] = []
    for language in ("console", "bash"):
        for block in _blocks(text, language):
            pending: str | None = None
            for line in block.splitlines():
                if pending is not None:  # a continued command line
                    pending += " " + line.strip()
                elif language == "bash":
                    pending = line
                elif line.startswith("$ "):
                    pending = line[2:]
                else:
                    continue  # output
                if pending.endswith("\\"):
                    pending = pending[:-1]
                    continue
                commands.append(pending)
                pending = None
    return commands


def _invocations(text: str) -> list[list[str]]:
    """Each ``trustfeed …`` call in the doc's shell commands, as its words up to a redirection."""
    calls = []
    for command in _commands(text):
        words = [w for w in re.split(r"[\s()]+", command) if w]
        for at, word in enumerate(words):
            if word == "trustfeed":
                rest = []
                for w in words[at + 1 :]:
                    if w in _SHELL_STOP or w.startswith(">"):
                        break
                    rest.append(w)
                calls.append(rest)
    return calls


def test_every_command_and_option_in_the_doc_exists(doc: str) -> None:
    calls = _invocations(doc)
    assert len(calls) > 20, "the doc's walkthrough was not found"
    root = typer.main.get_command(app)
    seen: set[tuple[str, ...]] = set()
    for words in calls:
        command: Any = root
        path: list[str] = []
        for word in words:
            group = getattr(command, "commands", None)
            if group is None:
                break
            assert word in group, (
                f"docs/auditing.md: no command `trustfeed {' '.join([*path, word])}`"
            )
            command, path = group[word], [*path, word]
        assert getattr(command, "commands", None) is None, (
            f"`trustfeed {' '.join(path)}` is a group"
        )
        known = {"--help"}
        for param in command.params:
            known.update(param.opts, param.secondary_opts)
        used = {w.split("=", 1)[0] for w in words if w.startswith("--")}
        assert used <= known, f"`trustfeed {' '.join(path)}` has no option {sorted(used - known)}"
        seen.add(tuple(path))
    for names in sorted(seen):
        result = runner.invoke(app, [*names, "--help"])
        assert result.exit_code == 0, (names, result.output)
    # The page covers what its brief says it covers.
    for wanted in [
        ("custody", "init"),
        ("custody", "checkpoint"),
        ("custody", "rotate-kek"),
        ("custody", "grant"),
        ("custody", "approve"),
        ("user", "export"),
        ("user", "erase"),
        ("audit", "verify"),
        ("audit", "prove"),
        ("audit", "verify-proof"),
        ("audit", "consistency"),
        ("audit", "checkpoint"),
        ("audit", "keygen"),
    ]:
        assert wanted in seen, f"the doc shows no `trustfeed {' '.join(wanted)}`"


def test_the_doc_names_no_path_of_a_development_machine(doc: str) -> None:
    # Paths are relative to TRUSTFEED_HOME in the doc; no machine's own folders.
    found = re.search(r"(?<![\w.~])/(work|tmp|home|Users|root)/", doc)
    assert found is None, found


# ----------------------------------------------------------------------------- walkthrough


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory as the working directory, ``TRUSTFEED_HOME=custody`` as in the doc."""
    monkeypatch.chdir(tmp_path)
    for name in ("STORE_URL", "KEYFILE", "LEDGER_KEY", "LEDGER_ORIGIN", "DOMESTIC"):
        monkeypatch.delenv(f"TRUSTFEED_{name}", raising=False)
    monkeypatch.setenv("TRUSTFEED_HOME", "custody")
    monkeypatch.setenv("COLUMNS", "110")
    return tmp_path


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output)
    assert "Traceback" not in result.output
    return result.output


def _quoted(doc: str, line: str) -> None:
    """A message the doc quotes is the one the command printed."""
    assert line.strip() in doc, f"docs/auditing.md should quote: {line.strip()}"


def _row(output: str, label: str) -> str:
    match = re.search(rf"{re.escape(label)}\s*│\s*(\S[^│]*?)\s*│", output)
    assert match, f"no row {label!r} in:\n{output}"
    return match.group(1)


def _note_size_root(note: str) -> tuple[int, bytes]:
    lines = note.splitlines()
    return int(lines[1]), base64.b64decode(lines[2])


def _entry(db: Path, index: int) -> bytes:
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT data FROM ledger_entries WHERE idx = ?", (index,)).fetchone()
    return bytes(row[0])


def _save(path: str, text: str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def test_the_walkthrough(home: Path, doc: str) -> None:
    db = home / "custody" / "custody.db"
    # --- the custodian: keys, a grant with two approvals, an export under it, a checkpoint
    init = _run("custody", "init")
    assert "ledger public key (for auditors): custody/keys/ledger.pub" in init
    grant = _run(
        "custody", "grant", "--store", STORE,
        "--grantee", "custodian:carol", "--requested-by", "custodian:carol",
        "--actions", "export", "--data-classes", "subject_data", "--purpose", "subject_access",
        "--owner", ALICE, "--expires-in", "86400",
        "--justification", "DSAR-4711: alice cannot log in",
    ).strip()  # fmt: skip
    assert " pending " in _run(
        "custody", "approve", "--store", STORE, "--grant", grant, "--approver", "custodian:dana"
    )
    assert " active " in _run(
        "custody", "approve", "--store", STORE, "--grant", grant, "--approver", "custodian:erik"
    )
    exported = _run(
        "user", "export", "--store", STORE, "--keys", KEYS, "--user", ALICE,
        "--as", "custodian", "--by", "carol", "--grant", grant,
        "--justification", "DSAR-4711", "--out", "alice.json",
    )  # fmt: skip
    _quoted(doc, exported)
    assert json.loads(Path("alice.json").read_text())["decision"]["ledger_index"] == 4
    note = _run("custody", "checkpoint")
    assert _note_size_root(note)[0] == 5

    # --- the auditor: pin the key, fetch the newest checkpoint, verify, keep it
    pub = _save("ledger.pub", Path("custody/keys/ledger.pub").read_text())
    candidate = _run("audit", "checkpoint", "--store", STORE)
    assert candidate == note
    first = _run("audit", "verify", "--store", STORE, "--public-key", str(pub))
    assert "ledger verified" in first
    assert _row(first, "checkpoint size") == "5"
    assert _row(first, "checkpoints matched") == "2"
    assert _row(first, "checkpoint root") == _note_size_root(note)[1].hex()
    _save("accepted/size-5.txt", candidate)
    trusted = _save("last-trusted.txt", candidate)

    # --- more activity: a refusal and an erasure, not yet checkpointed
    denied = runner.invoke(
        app,
        ["user", "export", "--store", STORE, "--keys", KEYS, "--user", ALICE,
         "--as", "custodian", "--by", "mallory", "--justification", "just curious"],
    )  # fmt: skip
    assert denied.exit_code == 1
    _quoted(doc, denied.output)
    erased = _run(
        "user", "erase", "--store", STORE, "--keys", KEYS, "--user", ALICE,
        "--by", ALICE, "--justification", "deleted her account in the app",
    )  # fmt: skip
    _quoted(doc, erased)
    pending = _run(
        "audit", "verify", "--store", STORE, "--public-key", "ledger.pub",
        "--checkpoint", "last-trusted.txt",
    )  # fmt: skip
    assert _row(pending, "entries in store") == "8"
    assert _row(pending, "not yet covered by a checkpoint") == "3"
    assert _row(pending, "consistent with trusted size") == "5"

    # --- the custodian checkpoints; the auditor verifies against the trusted one and keeps it
    assert _note_size_root(_run("custody", "checkpoint"))[0] == 8
    candidate = _run("audit", "checkpoint", "--store", STORE)
    second = _run(
        "audit", "verify", "--store", STORE, "--public-key", "ledger.pub",
        "--checkpoint", "last-trusted.txt",
    )  # fmt: skip
    assert _row(second, "checkpoint size") == "8"
    assert _row(second, "consistent with trusted size") == "5"
    assert _row(second, "not yet covered by a checkpoint") == "0"
    _save("accepted/size-8.txt", candidate)
    trusted.write_text(candidate, encoding="utf-8")

    # --- one entry offline: prove, verify-proof, and the leaf hash by hand
    proof_text = _run("audit", "prove", "--store", STORE, "--index", "5", "--size", "8")
    proof = json.loads(proof_text)
    assert (proof["index"], proof["size"]) == (5, 8)
    assert proof["leaf_hash"] == hashlib.sha256(b"\x00" + _entry(db, 5)).hexdigest()
    _save("proof-5.json", proof_text)
    included = _run(
        "audit", "verify-proof", "--proof", "proof-5.json", "--checkpoint", "last-trusted.txt",
        "--public-key", "ledger.pub",
    )  # fmt: skip
    _quoted(doc, included)

    # --- consistency: the roots are those of the two accepted checkpoints
    consistency = json.loads(
        _run("audit", "consistency", "--store", STORE, "--old-size", "5", "--new-size", "8")
    )
    old = _note_size_root(Path("accepted/size-5.txt").read_text())[1]
    new = _note_size_root(Path("accepted/size-8.txt").read_text())[1]
    assert (consistency["old_root"], consistency["new_root"]) == (old.hex(), new.hex())

    # --- the records carry the fields the doc describes
    _records_are_documented(db, doc)

    # --- tampering with a copy: exit 1, naming the entry
    tampered = home / "tampered.db"
    with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(tampered)) as copy:
        source.backup(copy)
        forged = _entry(db, 5).replace(b'"deny"', b'"allow"')
        copy.execute("UPDATE ledger_entries SET data = ? WHERE idx = 5", (forged,))
        copy.commit()
    failed = runner.invoke(
        app,
        ["audit", "verify", "--store", "sqlite:///tampered.db", "--public-key", "ledger.pub",
         "--checkpoint", "last-trusted.txt"],
    )  # fmt: skip
    assert failed.exit_code == 1, failed.output
    assert "first bad entry: 5" in failed.output
    _quoted(doc, failed.output)

    # --- bad input: exit 2
    for args in (
        ["--store", STORE, "--public-key", "custody/keys/ledger.key"],
        ["--store", "sqlite:///custdy.db", "--public-key", "ledger.pub"],
    ):
        bad = runner.invoke(app, ["audit", "verify", *args])
        assert bad.exit_code == 2, bad.output
        _quoted(doc, bad.output)
    assert not (home / "custdy.db").exists()

    # --- witnesses: required cosignature missing, then the doc's snippet cosigns
    _run("audit", "keygen", "--name", WITNESS, "--out-dir", "witness", "--witness")
    witness_args = ["--store", STORE, "--public-key", "ledger.pub"]
    witness_args += ["--witness-key", "witness/witness.example_w1.pub"]
    missing = runner.invoke(app, ["audit", "verify", *witness_args])
    assert missing.exit_code == 1
    _quoted(doc, missing.output)
    (snippet,) = _blocks(doc, "python")
    printed = StringIO()
    with redirect_stdout(printed):
        exec(compile(snippet, "docs/auditing.md", "exec"), {})  # the doc's own snippet
    assert printed.getvalue().count("\n— ") == 2  # the log's signature and the witness's
    cosigned = _run("audit", "verify", *witness_args, "--checkpoint", "last-trusted.txt")
    assert _row(cosigned, "signed by") == f"trustfeed.local/ledger, {WITNESS}"

    # --- the custodian section: revoke, rotate-kek, a second init refused
    assert " revoked " in _run(
        "custody", "revoke", "--store", STORE, "--grant", grant, "--by", "custodian:dana",
        "--reason", "DSAR-4711 answered",
    )  # fmt: skip
    rotated = _run("custody", "rotate-kek")
    _quoted(doc, rotated)
    again = runner.invoke(app, ["custody", "init"])
    assert again.exit_code == 1
    _quoted(doc, again.output)
    assert _run("custody", "policy", "show", "--store", STORE).startswith("# version 1 sha256:")
    _records_are_documented(db, doc)
    _run("custody", "checkpoint")
    final = _run(
        "audit", "verify", "--store", STORE, "--public-key", "ledger.pub",
        "--checkpoint", "last-trusted.txt",
    )  # fmt: skip
    assert _row(final, "entries in store") == _row(final, "checkpoint size") == "10"


def _records_are_documented(db: Path, doc: str) -> None:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT data FROM ledger_entries ORDER BY idx").fetchall()
    for (data,) in rows:
        record = json.loads(data)
        assert f"`{record['kind']}`" in doc, f"record kind {record['kind']} is not described"
        for field in record:
            assert f"`{field}`" in doc, f"field {field} of {record['kind']} is not described"

"""``trustfeed custody init | checkpoint | rotate-kek``: the custodian's own commands."""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trustfeed.cli import app
from trustfeed.custody import AccessRequest, Action, DataClass, Principal, Role, decode_record
from trustfeed.custody._boundary import Custody
from trustfeed.custody._keyfile import CustodianKeys, load_keyfile
from trustfeed.custody.ledger import Ledger, open_checkpoint, parse_verifier
from trustfeed.custody.vault import record_request

ALICE = "alice-7f3a"
ORIGIN = "trustfeed.local/ledger"
runner = CliRunner()


class Home:
    """``TRUSTFEED_HOME`` and the default paths under it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "custody.db"
        self.url = f"sqlite:///{self.db}"
        self.keyfile = root / "keys" / "custodian.json"
        self.signer = root / "keys" / "ledger.key"
        self.public = root / "keys" / "ledger.pub"

    def key_bytes(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (self.keyfile, self.signer, self.public)}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    for name in ("STORE_URL", "KEYFILE", "LEDGER_KEY", "LEDGER_ORIGIN", "DOMESTIC"):
        monkeypatch.delenv(f"TRUSTFEED_{name}", raising=False)
    monkeypatch.setenv("TRUSTFEED_HOME", str(tmp_path / "home"))
    return Home(tmp_path / "home")


def _custody(*args: str):
    return runner.invoke(app, ["custody", *args])


def _ok(*args: str) -> str:
    result = _custody(*args)
    assert result.exit_code == 0, result.output
    return result.output


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def _checkpoints(url: str) -> int:
    db = url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM ledger_checkpoints").fetchone()[0])


def _verifier(home: Home):
    return parse_verifier(home.public.read_text())


# ----------------------------------------------------------------------------- init


def test_init_creates_private_keys_a_public_key_and_a_first_checkpoint(home: Home) -> None:
    output = _ok("init")
    assert stat.S_IMODE(home.keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.signer.stat().st_mode) == 0o600
    public = home.public.read_text().strip()
    assert public.startswith(f"{ORIGIN}+") and public == output.strip().splitlines()[-1]
    assert f"ledger public key (for auditors): {home.public}" in output
    assert home.signer.read_text().startswith(f"PRIVATE+KEY+{ORIGIN}+")
    load_keyfile(home.keyfile)  # a valid key file
    with Ledger.open(home.url, create=False) as ledger:
        note = ledger.latest_checkpoint()
        assert note is not None
        checkpoint, _ = open_checkpoint(note, [_verifier(home)])
        assert (checkpoint.origin, checkpoint.size) == (ORIGIN, ledger.size()) == (ORIGIN, 0)


def test_a_second_init_refuses_and_changes_nothing(home: Home) -> None:
    _ok("init")
    before, checkpoints = home.key_bytes(), _checkpoints(home.url)
    again = _custody("init")
    _one_line_error(again, str(home.keyfile), "refusing to overwrite")
    assert home.key_bytes() == before
    assert _checkpoints(home.url) == checkpoints
    # Any one of the three files is enough to refuse.
    home.keyfile.unlink()
    home.public.unlink()
    _one_line_error(_custody("init"), str(home.signer), "refusing to overwrite")
    assert not home.keyfile.exists() and not home.public.exists()


def test_init_refuses_a_store_that_already_holds_a_signed_ledger(home: Home) -> None:
    _ok("init")
    for path in (home.keyfile, home.signer, home.public):  # the keys are lost…
        path.unlink()
    refused = _custody("init")  # …but a new signing key would orphan every auditor's checkpoint
    _one_line_error(refused, "already holds a signed ledger")
    assert not home.keyfile.exists() and not home.signer.exists()


@pytest.mark.parametrize("store", ["mysql://x/y", "sqlite:///{tmp}/no/such/dir/custody.db"])
def test_init_with_a_bad_store_writes_no_key_and_can_be_retried(home: Home, store: str) -> None:
    bad = _custody("init", "--store", store.format(tmp=home.root.parent))
    assert bad.exit_code == 1 and bad.stderr.startswith("error: "), bad.output
    assert not home.root.exists() or not any(home.root.rglob("*")), "a failed init left files"
    _ok("init")  # the retry is not refused by half-made keys


# ----------------------------------------------------------------------------- checkpoint


def test_checkpoint_prints_a_note_that_verifies_at_the_ledger_size(home: Home) -> None:
    _ok("init")
    _ok(
        "grant", "--store", home.url, "--grantee", "custodian:carol", "--actions", "export",
        "--data-classes", "subject_data", "--purpose", "subject_access", "--expires-in", "60",
        "--requested-by", "custodian:carol",
    )  # fmt: skip
    note = _ok("checkpoint")
    checkpoint, opened = open_checkpoint(note, [_verifier(home)])
    assert opened.verified_names == [ORIGIN]
    with Ledger.open(home.url, create=False) as ledger:
        assert checkpoint.size == ledger.size() == 1
        assert checkpoint.root == ledger.root_hash()
        assert ledger.latest_checkpoint() == note


def test_checkpoint_without_a_key_file_fails_and_creates_no_store(home: Home) -> None:
    result = _custody("checkpoint")
    _one_line_error(result, str(home.signer), "No such file")
    assert not home.db.exists()
    _ok("init")
    missing = home.root / "elsewhere.key"
    _one_line_error(_custody("checkpoint", "--ledger-key", str(missing)), str(missing))


def test_checkpoint_on_a_store_without_a_ledger_fails_and_creates_nothing(home: Home) -> None:
    _ok("init")
    absent = home.root / "typo.db"
    result = _custody("checkpoint", "--store", f"sqlite:///{absent}")
    _one_line_error(result, "no ledger here", str(absent))
    assert not absent.exists()
    other = home.root / "other.db"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    result = _custody("checkpoint", "--store", f"sqlite:///{other}")
    _one_line_error(result, "no ledger in this store")
    with closing(sqlite3.connect(other)) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [("unrelated",)]


# ----------------------------------------------------------------------------- rotate-kek


def _profile(principal: Principal, action: Action, purpose: str) -> AccessRequest:
    """A request about alice's one profile record (see tests/test_vault_policy.py)."""
    return record_request(
        principal,
        action,
        owner=ALICE,
        record_id="p1",
        data_class=DataClass.PUBLIC_PROFILE,
        residency="US",
        purpose=purpose,
    )


def test_rotate_kek_rewraps_the_data_keys_and_is_logged(home: Home) -> None:
    _ok("init")
    operator = Principal("ingest-svc", Role.OPERATOR, "US")
    with Custody.open(home.url, keys=load_keyfile(home.keyfile), domestic="US") as custody:
        custody.vault.put(_profile(operator, Action.WRITE, "ingest"), b"alice likes cats")
    output = _ok("rotate-kek")
    assert output.strip() == "current KEK is now kek-2; rewrapped 1 data keys"
    keys = load_keyfile(home.keyfile)
    assert keys.current_kek == "kek-2" and set(keys.keks) == {"kek-1", "kek-2"}
    with closing(sqlite3.connect(home.db)) as conn:
        wrapped_under = conn.execute("SELECT kek_id FROM vault_data_keys").fetchall()
    assert wrapped_under == [("kek-2",)]
    # With only the new KEK loaded, the record must still open for its owner.
    only_new = CustodianKeys(
        {"kek-2": keys.keks["kek-2"]}, "kek-2", keys.pseudonym_keys, keys.current_pseudonym
    )
    as_alice = Principal(ALICE, Role.USER, "US")
    with Custody.open(home.url, keys=only_new, domestic="US") as custody:
        record = custody.vault.get(_profile(as_alice, Action.READ, "subject_access"))
        assert record.data == b"alice likes cats"
        ledger = custody.ledger
        records = [decode_record(e) for e in ledger.entries(0, ledger.size())]
    rotations = [r for r in records if r["kind"] == "kek_rotation"]
    assert len(rotations) == 1
    assert (rotations[0]["kek"], rotations[0]["rewrapped"]) == ("kek-2", 1)
    # The ledger still verifies once checkpointed.
    note = _ok("checkpoint")
    assert open_checkpoint(note, [_verifier(home)])[0].size == len(records)


def test_rotate_kek_on_a_store_that_is_not_there_changes_nothing(home: Home) -> None:
    _ok("init")
    before = home.keyfile.read_bytes()
    typo = home.root / "custdy.db"
    _one_line_error(_custody("rotate-kek", "--store", f"sqlite:///{typo}"), "no ledger here")
    assert not typo.exists()
    assert home.keyfile.read_bytes() == before


def test_rotate_kek_without_a_key_file_fails(home: Home) -> None:
    _ok("init")
    missing = home.root / "none.json"
    _one_line_error(_custody("rotate-kek", "--keys", str(missing)), "key file", "not found")

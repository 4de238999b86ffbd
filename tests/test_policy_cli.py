"""``trustfeed custody`` through typer's CliRunner: grants, approvals, revokes,
policy show/activate, and one-line errors with a non-zero exit for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trustfeed.custody import MemorySink
from trustfeed.custody.policy import _cli
from trustfeed.custody.policy._cli import custody_app

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, MemorySink]:
    """A store URL; the ledger is an in-memory sink shared by every command."""
    sink = MemorySink()
    monkeypatch.setattr(_cli, "open_sink", lambda url: sink)
    return f"sqlite:///{tmp_path / 'custody.db'}", sink


def cli(*args: str):
    return runner.invoke(custody_app, list(args))


def request(url: str, *extra: str):
    return cli(
        "grant", "--store", url, "--grantee", "operator:analyst", "--actions", "read",
        "--data-classes", "watch_history,messages", "--purpose", "incident",
        "--expires-in", "3600", "--requested-by", "operator:analyst", *extra,
    )  # fmt: skip


def test_grant_approve_revoke_and_list(store) -> None:
    url, sink = store
    result = request(url, "--owner", "u1", "--allow-transfer")
    assert result.exit_code == 0, result.output
    grant_id = result.stdout.strip()
    assert grant_id.startswith("g-")
    assert (
        cli("approve", "--store", url, "--grant", grant_id, "--approver", "custodian:a").exit_code
        == 0
    )
    result = cli("approve", "--store", url, "--grant", grant_id, "--approver", "custodian:b")
    assert result.exit_code == 0 and "active" in result.stdout
    listing = cli("grants", "--store", url)
    assert (
        grant_id in listing.stdout
        and "active" in listing.stdout
        and "transfer=yes" in listing.stdout
    )
    assert cli("revoke", "--store", url, "--grant", grant_id, "--by", "custodian:c").exit_code == 0
    assert "revoked" in cli("grants", "--store", url).stdout
    kinds = [json.loads(e)["kind"] for e in sink.entries]
    assert kinds == ["grant_request", "grant_approve", "grant_approve", "grant_revoke"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--data-classes", "dna"), "unknown data class 'dna'"),
        (("--actions", "steal"), "unknown action 'steal'"),
        (("--grantee", "nobody"), "must be ROLE:ID"),
        (("--grantee", "king:arthur"), "unknown role 'king'"),
        (("--expires-in", "-5"), "expires_in"),
    ],
)
def test_bad_grant_requests_fail_with_one_line(store, args, message) -> None:
    url, sink = store
    base = {
        "--grantee": "operator:analyst", "--actions": "read", "--data-classes": "messages",
        "--purpose": "incident", "--expires-in": "60", "--requested-by": "operator:analyst",
    }  # fmt: skip
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = cli("grant", "--store", url, *[x for kv in base.items() for x in kv])
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert sink.entries == []


def test_bad_approvals_fail_with_one_line(store) -> None:
    url, _ = store
    grant_id = request(url).stdout.strip()
    cases = [
        (("--grant", "g-missing", "--approver", "custodian:a"), "unknown grant"),
        (("--grant", grant_id, "--approver", "custodian:analyst"), "themselves"),
        (("--grant", grant_id, "--approver", "operator:x"), "only custodians"),
    ]
    for args, message in cases:
        result = cli("approve", "--store", url, *args)
        assert result.exit_code == 1 and message in result.stderr, result.output
    assert (
        cli("approve", "--store", url, "--grant", grant_id, "--approver", "custodian:a").exit_code
        == 0
    )
    result = cli("approve", "--store", url, "--grant", grant_id, "--approver", "custodian:a")
    assert result.exit_code == 1 and "already approved" in result.stderr
    result = cli("revoke", "--store", url, "--grant", "g-missing", "--by", "custodian:a")
    assert result.exit_code == 1 and "unknown grant" in result.stderr


def test_policy_show_and_activate(store, tmp_path: Path) -> None:
    url, sink = store
    shown = cli("policy", "show", "--store", url)
    assert shown.exit_code == 0 and "licensor-no-personal-data" in shown.stdout
    good = tmp_path / "p.cedar"
    good.write_text(
        '@id("deny-all-users")\nforbid (principal is Trustfeed::User, action, resource);\n'
    )
    result = cli("policy", "activate", str(good), "--store", url, "--actor", "custodian:alice")
    assert result.exit_code == 0 and "activated version 1" in result.stdout
    shown = cli("policy", "show", "--store", url)
    assert "deny-all-users" in shown.stdout and "by alice" in shown.stdout
    assert json.loads(sink.entries[-1])["kind"] == "policy_version"


@pytest.mark.parametrize(
    ("content", "actor", "message"),
    [
        (
            '@id("x") permit (principal, action, resource) when { resource.nope };',
            "custodian:a",
            "nope",
        ),
        ('@id("x") permit (principal, action, resource);', "operator:a", "only custodians"),
        (None, "custodian:a", "cannot read"),
    ],
)
def test_bad_activations_fail_with_one_line(store, tmp_path: Path, content, actor, message) -> None:
    url, sink = store
    path = tmp_path / "p.cedar"
    if content is not None:
        path.write_text(content)
    result = cli("policy", "activate", str(path), "--store", url, "--actor", actor)
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and sink.entries == []


def test_without_the_ledger_the_cli_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(url: str):
        raise _cli.TrustfeedError("the audit ledger (trustfeed.custody.ledger) is not available")

    monkeypatch.setattr(_cli, "open_sink", missing)
    result = cli("grants", "--store", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 1 and "ledger" in result.stderr


def test_cli_writes_to_the_real_ledger(tmp_path: Path) -> None:
    from trustfeed.custody.ledger import Ledger

    url = f"sqlite:///{tmp_path / 'custody.db'}"
    result = request(url)
    assert result.exit_code == 0, result.output
    assert cli("grants", "--store", url).exit_code == 0
    with Ledger.open(url) as ledger:
        assert json.loads(ledger.entry(0))["kind"] == "grant_request"

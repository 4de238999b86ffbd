"""``trustfeed demo`` end to end through the CLI (the whole platform), with tiny sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trustfeed.cli import app
from trustfeed.data._world import generate_world

TINY = ["--users", "60", "--items", "150", "--events", "3000"]


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(app, ["demo", *map(str, args)], env={"COLUMNS": "200"})


def test_demo_runs_the_whole_platform(tmp_path: Path) -> None:
    result = run(*TINY, "--out", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    out = result.output
    for step in ("short-video world", "content security", "vault", "online training",
                 "feeds", "popularity", "ndcg@10", "verified"):  # fmt: skip
        assert step in out, step
    assert "removed" in out  # the seeded known-bad covers are caught by the bank
    assert "not_recommendable" in out  # the offensive captions by text screening
    assert "bank demo-known-bad" in out
    assert (tmp_path / "demo" / "custody.db").exists()
    assert "because you watched" in out and "3331946" not in out


def test_demo_is_deterministic(tmp_path: Path) -> None:
    def stable(text: str) -> str:  # statuses, feeds and quality; timings differ
        return text.split("5. feeds")[1].split("7. custody")[0]

    first = run(*TINY, "--seed", "5", "--out", tmp_path / "a").output
    second = run(*TINY, "--seed", "5", "--out", tmp_path / "b").output
    assert stable(first) == stable(second)


def test_demo_reads_a_dataset(tmp_path: Path) -> None:
    log = generate_world(n_users=40, n_items=150, n_events=2000, seed=2).interactions
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    result = run("--dataset", path, "--out", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    assert "interactions from log.csv" in result.output
    assert "interests unknown" in result.output and "verified" in result.output


def test_default_out_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTFEED_HOME", str(tmp_path / "home"))
    result = run(*TINY)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "demo" / "custody.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "-5"], "--users"),
        (["--items", "0"], "--items"),
        (["--events", "10"], "--events"),
        (["--seed", "-1"], "--seed"),
        (["--dataset", "no/such/file.csv"], "does not exist"),
    ],
)
def test_bad_options_exit_with_a_message(args: list[str], message: str, tmp_path: Path) -> None:
    result = run(*args, "--out", tmp_path)
    assert result.exit_code != 0
    assert message in result.output


def test_a_bad_dataset_exits_with_the_loaders_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id\n1,2\n")
    result = run("--dataset", path, "--out", tmp_path)
    assert result.exit_code == 1
    assert "error" in result.output and "missing required column" in result.output


def test_too_few_events_to_split(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("user_id,item_id,timestamp\n1,2,0\n1,3,1\n")
    result = run("--dataset", path, "--out", tmp_path)
    assert result.exit_code == 1
    assert "too few" in result.output

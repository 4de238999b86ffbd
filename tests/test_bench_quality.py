"""``trustfeed bench quality``: the CLI's errors and a tiny end-to-end run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

import trustfeed.recommend
from trustfeed.bench import BenchError
from trustfeed.bench._quality import (
    MODELS,
    check_models,
    model_class,
    ratio_lines,
    ratios,
    run_quality,
)
from trustfeed.cli import app
from trustfeed.data import Dataset

pytest.importorskip("implicit", reason="needs the bench extra")

METRICS = [f"{m}@{k}" for k in (10, 20) for m in ("recall", "ndcg", "hr", "coverage")]


def tiny_interactions(n_users: int = 30, n_items: int = 25, per_user: int = 12) -> pd.DataFrame:
    """Users whose tastes cluster in two halves of the catalogue, in time order."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(1, n_users + 1):
        half = np.arange(n_items // 2) if user % 2 else np.arange(n_items // 2, n_items)
        items = rng.choice(half, size=min(per_user, len(half)), replace=False)
        rows += [(user, int(item) + 1, float(t)) for t, item in enumerate(items)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


@pytest.fixture
def datasets_dir(tmp_path: Path) -> Path:
    """A datasets directory with a tiny ``ml-100k`` in RecBole's atomic format."""
    frame = tiny_interactions()
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t4\t{int(t)}" for u, i, t in frame.itertuples(index=False)]
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "ml-100k.inter").write_text("\n".join(lines) + "\n")
    return tmp_path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["bench", "quality", *args])
    return result.exit_code, result.output


def test_unknown_dataset_is_refused(datasets_dir: Path) -> None:
    code, output = invoke("--dataset", "netflix", "--datasets-dir", str(datasets_dir))
    assert code != 0
    assert "unknown dataset 'netflix'" in output and "ml-100k" in output


def test_missing_datasets_dir_is_refused(tmp_path: Path) -> None:
    code, output = invoke("--dataset", "ml-100k", "--datasets-dir", str(tmp_path / "absent"))
    assert code != 0
    assert "not found" in output and "TRUSTFEED_DATASETS_DIR" in output


def test_dataset_missing_from_the_dir_is_refused(tmp_path: Path) -> None:
    code, output = invoke("--dataset", "beauty", "--datasets-dir", str(tmp_path))
    assert code != 0
    assert "error:" in output and "Beauty.txt" in output


def test_unknown_model_is_refused(datasets_dir: Path) -> None:
    code, output = invoke(
        "--dataset", "ml-100k", "--datasets-dir", str(datasets_dir), "--models", "ease,svd"
    )
    assert code != 0
    assert "unknown model(s) svd" in output


def test_tiny_run_through_the_cli(datasets_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    code, output = invoke(
        "--dataset",
        "ml-100k",
        "--datasets-dir",
        str(datasets_dir),
        "--models",
        "popularity,ease",
        "--json",
        str(out),
        "--threads",
        "1",
    )
    assert code == 0, output
    assert "popularity" in output and "ease" in output and "N@10" in output
    report = json.loads(out.read_text())
    assert report["dataset"] == "ml-100k" and report["protocol"] == "temporal"
    assert [r["model"] for r in report["results"]] == ["popularity", "ease"]
    ease = report["results"][1]
    assert len(ease["grid"]) == 5 and ease["params"] in [p["params"] for p in ease["grid"]]
    for result in report["results"]:
        assert set(METRICS) <= set(result)
        assert result["peak_rss_mb"] >= result["base_rss_mb"] > 10
        assert result["fit_s"] >= 0 and result["recommend_s"] >= 0


def test_run_quality_with_an_injected_loader() -> None:
    """A sequence dataset (leave-last-one-out) handed in directly, three peers."""

    def loader(name: str, root: Path) -> Dataset:
        return Dataset(name, tiny_interactions(per_user=8), None, "leave_last_one_out")

    buffer = io.StringIO()
    results = run_quality(
        "beauty",
        Path("unused"),
        ["ease", "als", "popularity"],
        seed=3,
        console=Console(file=buffer, width=160),
        threads=1,
        loader=loader,
    )
    assert [r["model"] for r in results] == ["ease", "als", "popularity"]
    by_name = {r["model"]: r for r in results}
    # The two taste clusters are easy: anything personal beats popularity.
    assert by_name["ease"]["hr@10"] > by_name["popularity"]["hr@10"]
    assert by_name["als"]["params"]["factors"] in (32, 64, 128)
    assert "trustfeed bench quality — beauty" in buffer.getvalue()


def test_check_models() -> None:
    assert check_models(None) == list(MODELS)
    assert check_models([" ease", "bpr "]) == ["ease", "bpr"]
    with pytest.raises(BenchError, match="unknown model"):
        check_models(["ease", "svd"])
    with pytest.raises(BenchError, match="none given"):
        check_models([""])


def test_ours_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(trustfeed.recommend, "Recommender", raising=False)
    with pytest.raises(BenchError, match="no Recommender"):
        model_class("trustfeed")


def test_ratios_take_the_best_peer_per_metric() -> None:
    results = [
        {"model": "trustfeed", "ndcg@10": 0.2, "hr@10": 0.6},
        {"model": "ease", "ndcg@10": 0.25, "hr@10": 0.5},
        {"model": "als", "ndcg@10": 0.1, "hr@10": 0.75},
    ]
    found = ratios(results)
    assert found["ndcg@10"]["best_peer"] == "ease"
    assert found["ndcg@10"]["ratio"] == pytest.approx(0.8)
    assert found["hr@10"]["best_peer"] == "als"
    assert found["hr@10"]["ratio"] == pytest.approx(0.8)
    assert ratio_lines(results)[0].startswith("trustfeed / best peer (ease) on ndcg@10: 0.800")
    assert ratios(results[1:]) == {}

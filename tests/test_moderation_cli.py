"""``trustfeed moderation hash|match`` through typer's CliRunner."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import Moderation, PDQSignal, Status, moderation_app

runner = CliRunner()


def _png(path: Path, seed: int = 1) -> bytes:
    blocks = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(blocks).resize((200, 120)).save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_hash_prints_json_signals(tmp_path: Path) -> None:
    data = _png(tmp_path / "a.png")
    result = runner.invoke(moderation_app, ["hash", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["md5"] == hashlib.md5(data).hexdigest()
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    assert out["pdq"]["hash"] == PDQSignal().hash_bytes(data)[0].value
    assert out["pdq"]["quality"] >= 50 and len(out["pdq"]["dihedral"]) == 8


def test_missing_and_unsupported_files_fail_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    for name, text in [("nope.png", "no such file"), ("notes.txt", "not a supported image")]:
        result = runner.invoke(moderation_app, ["hash", str(tmp_path / name)])
        assert result.exit_code == 2
        assert text in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_match_prints_bank_matches(tmp_path: Path) -> None:
    data = _png(tmp_path / "a.png")
    url = f"sqlite:///{tmp_path / 'mod.db'}"
    ledger = Ledger.open("sqlite://", origin="t/l")
    mod = Moderation.open(url, sink=ledger, text_classifiers=[])
    mod.banks.create("bad", action=Status.REMOVED)
    mod.banks.add("bad", "sha256", hashlib.sha256(data).hexdigest())
    mod.banks.add("bad", "pdq", PDQSignal().hash_bytes(data)[0].value)
    mod.close()
    ledger.close()
    result = runner.invoke(moderation_app, ["match", str(tmp_path / "a.png"), "--store", url])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {(m["bank"], m["signal"], m["distance"]) for m in out["matches"]} == {
        ("bad", "sha256", 0),
        ("bad", "pdq", 0),
    }
    missing = runner.invoke(
        moderation_app, ["match", str(tmp_path / "a.png"), "--store", f"sqlite:///{tmp_path}/x.db"]
    )
    assert missing.exit_code == 2 and "no SQLite database" in missing.stderr

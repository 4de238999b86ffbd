"""Settings: the sample file loads, documents every field, and bad values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from trustfeed import settings as settings_module
from trustfeed.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "trustfeed.sample.env"


def _sample_names() -> set[str]:
    lines = SAMPLE.read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


def test_sample_file_loads_to_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _sample_names():
        monkeypatch.delenv(name, raising=False)
    loaded = load_settings(SAMPLE)
    assert loaded == Settings()
    assert loaded.custody_store_url == f"sqlite:///{Path('.trustfeed') / 'custody.db'}"


def test_sample_file_and_docstring_list_every_field() -> None:
    names = {f"TRUSTFEED_{field.upper()}" for field in Settings.model_fields}
    assert _sample_names() == names
    for name in names:
        assert f"``{name}``" in (settings_module.__doc__ or "")


def test_environment_overrides_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTFEED_STORE_URL", "postgresql://postgres@127.0.0.1/test")
    monkeypatch.setenv("TRUSTFEED_DOMESTIC", "DE")
    loaded = load_settings()
    assert loaded.custody_store_url.startswith("postgresql://")
    assert loaded.domestic == "DE"
    monkeypatch.setenv("TRUSTFEED_DOMESTIC", "germany")
    with pytest.raises(ValidationError, match="domestic"):
        load_settings()

"""A small service world for the API tests: a platform, its tokens and some uploads."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from trustfeed.api import create_app
from trustfeed.custody import Principal, Role
from trustfeed.service import Platform, PlatformConfig

DOMESTIC = "US"


def config(home: Path, store_url: str | None = None, log_url: str | None = None) -> PlatformConfig:
    return PlatformConfig(
        home=home,
        store_url=store_url or f"sqlite:///{home / 'store.db'}",
        log_url=log_url or str(home / "log"),
        moderation_url=(
            store_url
            if store_url is not None and not store_url.startswith("sqlite")
            else f"sqlite:///{home / 'moderation.db'}"  # SQLite: one writer per file
        ),
        domestic=DOMESTIC,
        keyfile=home / "keys" / "custodian.json",
        ledger_key=home / "keys" / "ledger.key",
        origin="test.trustfeed/ledger",
        refresh_every_s=3600,
        model_params={"embedding_dim": 8},
    )


def image(seed: int, size: int = 96) -> bytes:
    """A distinct PNG per seed (random blocks, so perceptual hashes differ)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    picture = Image.fromarray(blocks).resize((size, size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


@dataclass
class World:
    platform: Platform
    client: TestClient
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def upload(
        self,
        item_id: int,
        *,
        creator: str = "creator-1",
        topic: str = "cats",
        media: bytes | None = None,
        caption: str = "a video",
    ) -> dict:
        response = self.client.post(
            "/v1/items",
            headers=self.headers("operator"),
            files={"file": (f"{item_id}.png", media or image(item_id), "image/png")},
            data={"item_id": str(item_id), "creator_id": creator, "topic": topic,
                  "duration_ms": "15000", "caption": caption},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        return response.json()


def open_world(home: Path, **kwargs: str) -> World:
    platform = Platform.open(config(home, **kwargs), text_classifiers=[])
    admin = platform.bootstrap_token()
    assert admin is not None
    tokens = {"custodian": admin}
    people = {
        "operator": Principal("app-backend", Role.OPERATOR, DOMESTIC),
        "moderator": Principal("mod-ann", Role.MODERATOR, DOMESTIC),
        "moderator2": Principal("mod-bob", Role.MODERATOR, DOMESTIC),
        "auditor": Principal("auditor-1", Role.AUDITOR, DOMESTIC),
        "licensor": Principal("licensor-1", Role.LICENSOR, "CN"),
        "alice": Principal("alice", Role.USER, DOMESTIC),
        "bob": Principal("bob", Role.USER, DOMESTIC),
        "custodian2": Principal("custodian-2", Role.CUSTODIAN, DOMESTIC),
        "custodian3": Principal("custodian-3", Role.CUSTODIAN, DOMESTIC),
    }
    for name, principal in people.items():
        tokens[name], _ = platform.tokens.issue(principal, label=name, issued_by="test")
    return World(platform, TestClient(create_app(platform)), tokens)

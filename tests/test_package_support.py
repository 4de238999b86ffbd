"""Helpers shared by the package and lineage tests (a licensor, packages, a small world).

Named ``test_*`` so it may live beside them; its own tests check the helpers.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trustfeed.custody import KeyedHasher, MemorySink
from trustfeed.custody.pseudonym import PseudonymStream
from trustfeed.recommend import Recommender
from trustfeed.recommend.package import (
    ENGINE_FEATURES,
    AlgorithmConfig,
    PackageRegistry,
    build_package,
    generate_licensor_key,
    sign_package,
)
from trustfeed.storage import open_engine

LICENSOR = "licensor.example/algo"
DOMESTIC = "US"
HASHER = KeyedHasher({1: bytes(range(32))}, current=1)


@functools.cache
def licensor_keys(name: str = LICENSOR) -> tuple[str, str]:
    """(signer text, verifier text), one pair per name for the whole run."""
    return generate_licensor_key(name)


def config(**overrides: Any) -> dict[str, Any]:
    """A valid config.json as a dict; small and fast (no ANN)."""
    base: dict[str, Any] = {
        "format": "trustfeed.algorithm-config/v1",
        "name": "example-ranker",
        "version": "1.0.0",
        "model_class": "Recommender",
        "seed": 7,
        "hyperparameters": {"embedding_dim": 0, "window": 30, "recency": 6.0},
        "features": list(ENGINE_FEATURES),
        "ranking_weights": {"following": 0.2},
        "description": "item-item short-video ranker",
    }
    return base | overrides


def write_source(
    where: Path, conf: dict[str, Any], *, weights_from: pd.DataFrame | None = None
) -> Path:
    """A licensor's source directory: config.json, and weights fitted on ``weights_from``."""
    where.mkdir(parents=True)
    (where / "config.json").write_text(json.dumps(conf, indent=2), encoding="utf-8")
    if weights_from is not None:
        params = AlgorithmConfig(**conf).engine_params()
        model = Recommender(seed=conf["seed"], **params).fit(weights_from)
        model.save(where / "weights")
    return where


def make_package(
    tmp: Path,
    name: str = "pkg",
    conf: dict[str, Any] | None = None,
    *,
    weights_from: pd.DataFrame | None = None,
    signer: str | None = None,
    sign: bool = True,
) -> Path:
    """Build (and by default sign, with the licensor's key) a package at ``tmp/name``."""
    source = write_source(tmp / f"{name}-src", conf or config(), weights_from=weights_from)
    out = tmp / name
    build_package(source, out)
    shutil.rmtree(source)
    if sign:
        sign_package(out, signer or licensor_keys()[0])
    return out


def memory_registry(*, trust: bool = True) -> tuple[PackageRegistry, MemorySink]:
    """A registry on in-memory SQLite with an in-memory ledger (for property tests)."""
    sink = MemorySink()
    registry = PackageRegistry(engine=open_engine("sqlite://"), sink=sink)
    if trust:
        registry.trust_key(licensor_keys()[1], by="custodian:alice")
    return registry, sink


def raw_events(seed: int = 0, n_users: int = 25, n_items: int = 40, n: int = 600) -> pd.DataFrame:
    """Raw app events (ids as the app knows them), time-ordered, all domestic."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    # Users prefer a band of items, so the item-item model has something to learn.
    items = (users * 3 + rng.integers(0, 8, n)) % n_items
    return pd.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items.astype(np.int64) + 1000,
            "timestamp": np.sort(rng.uniform(1.7e9, 1.7e9 + 86_400, n)),
            "event": "view",
            "watch_ms": rng.uniform(1_000, 30_000, n),
            "duration_ms": 30_000.0,
        }
    )


def pseudonymised(frame: pd.DataFrame, residency: str = DOMESTIC) -> pd.DataFrame:
    """What the training stream hands the trainer."""
    return PseudonymStream(HASHER, domestic=DOMESTIC).events(frame, residency=residency).frame


def test_raw_events_are_deterministic() -> None:
    pd.testing.assert_frame_equal(raw_events(3), raw_events(3))


def test_default_config_is_valid() -> None:
    assert AlgorithmConfig(**config()).engine_config().embedding_dim == 0

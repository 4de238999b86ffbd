"""Saving and loading a Recommender: a directory of npz arrays and one JSON header.

No pickle: every array goes through ``np.savez``/``np.load(allow_pickle=False)``
and the header names the format and its version, refused when unknown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import scipy.sparse as sp

from trustfeed.recommend._base import RecommendError
from trustfeed.recommend._history import RecentPositives
from trustfeed.recommend._model import ItemModel
from trustfeed.recommend._ranker import MultiTaskRanker
from trustfeed.recommend._signals import ItemStats
from trustfeed.recommend._table import CollisionlessTable

if TYPE_CHECKING:
    from trustfeed.recommend._recommender import Recommender

R = TypeVar("R", bound="Recommender")

FORMAT = "trustfeed.Recommender"
FORMAT_VERSION = 1
_SPARSE = ("gram", "weights", "transitions", "seen", "follows")


def save_state(rec: Recommender, path: Path) -> None:
    """Write ``rec`` (fitted) to the directory ``path``; the caller holds its locks."""
    rec._fold_pending()
    rec.seen.compact()
    rec.follows.compact()
    path.mkdir(parents=True, exist_ok=True)
    rec.users.save(path / "users.npz")
    rec.items.save(path / "items.npz")
    arrays: dict[str, np.ndarray] = {
        "model_ids": rec.model_ids, "embeddings": rec.embeddings, "topic": rec.topic,
        "blocked_ids": rec.blocked_ids, "allowed_ids": rec.allowed_ids,
        "moves": rec._moves_total,
    }  # fmt: skip
    arrays |= {f"recent_{k}": v for k, v in rec.recent.state().items()}
    arrays |= {f"stats_{k}": v for k, v in rec.stats.state().items()}
    for name, m in zip(_SPARSE, _matrices(rec), strict=True):
        m = m.tocsr()
        arrays |= {
            f"{name}_data": m.data,
            f"{name}_indices": m.indices,
            f"{name}_indptr": m.indptr,
            f"{name}_shape": np.array(m.shape),
        }
    np.savez(path / "state.npz", **arrays)  # type: ignore[arg-type]
    if rec.ranker is not None:
        rec.ranker.save(path / "ranker.npz")
    header = {
        "format": FORMAT, "version": FORMAT_VERSION, "seed": rec.seed,
        "config": rec.config.model_dump(), "topic_names": rec.topic_names,
        "has_ranker": rec.ranker is not None,
    }  # fmt: skip
    (path / "recommender.json").write_text(json.dumps(header, indent=2))


def _matrices(rec: Recommender) -> tuple[sp.spmatrix, ...]:
    return (rec._gram, rec.weights, rec.transitions, rec.seen.base, rec.follows.base)


def load_state(cls: type[R], path: Path) -> R:
    """A new ``cls`` instance from the directory ``path``."""
    header = _header(path)
    rec = cls(seed=header["seed"], **header["config"])
    rec.users = CollisionlessTable.load(path / "users.npz")
    rec.items = CollisionlessTable.load(path / "items.npz")
    with np.load(path / "state.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    rec.topic, rec._moves_total = a["topic"], a["moves"]
    if "blocked_ids" in a:
        rec.blocked_ids, rec.allowed_ids = a["blocked_ids"], a["allowed_ids"]
    else:  # saves before eligibility was kept by id: a row mask
        rows = np.flatnonzero(a["blocked"])
        rows = rows[np.isin(rows, rec.items.live_rows())]
        rec.blocked_ids = np.unique(rec.items.ids_at(rows))
    rec.recent = RecentPositives.from_state(
        rec.recent.size, {k[7:]: v for k, v in a.items() if k.startswith("recent_")}
    )
    rec.stats = ItemStats.from_state(
        rec.config.trending_half_life_s,
        {k[6:]: v for k, v in a.items() if k.startswith("stats_")},
    )
    mats = {
        name: sp.csr_matrix(
            (a[f"{name}_data"], a[f"{name}_indices"], a[f"{name}_indptr"]),
            shape=tuple(a[f"{name}_shape"]),
        )
        for name in _SPARSE
    }
    rec._gram = mats["gram"]
    rec._model = ItemModel(mats["weights"], mats["transitions"], a["model_ids"], a["embeddings"])
    rec.seen.base, rec.follows.base = mats["seen"], mats["follows"]
    rec.topic_names = list(header["topic_names"])
    rec.stats._ensure(rec.items.n_rows)  # readers index stats by any item row
    if header["has_ranker"]:
        rec.ranker = MultiTaskRanker.load(path / "ranker.npz")
        rec.ranker.compile()  # now, not in the first feed request
    rec.fitted = True
    return rec


def _header(path: Path) -> dict:
    try:
        header = json.loads((path / "recommender.json").read_text())
    except (OSError, ValueError) as exc:
        raise RecommendError(f"{path}: not a saved Recommender ({exc})") from exc
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise RecommendError(
            f"{path}: unknown format {header.get('format')!r} v{header.get('version')!r}"
        )
    return header

"""KuaiRand-1K's random-exposure log, shipped with trustfeed (CC BY-SA 4.0).

On these 43,028 impressions the Kuaishou app showed a randomly chosen video
instead of its recommender's pick, so the log carries no exposure bias from a
recommender: ordering a user's impressions by a model's score and comparing
with what the user did (:func:`trustfeed.evaluation.grouped_auc`,
:func:`~trustfeed.evaluation.grouped_ndcg`) is an unbiased ranking test on
real short-video behaviour. Attribution: ``kuairand/ATTRIBUTION.md`` beside
this module (Gao et al., CIKM 2022, kuairand.com).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pandas as pd

from trustfeed.data._schema import DataError

KUAIRAND_FILE = "log_random_4_22_to_5_08_1k.csv.gz"
#: SHA-256 of the uncompressed CSV as released (checked by the test suite).
KUAIRAND_SHA256 = "e98841eabb3b078c812c4646bf0c5e3f0c947a4183dd950cb091e32377b9a849"
#: The file's columns; all are integers (flags are 0/1).
KUAIRAND_COLUMNS: tuple[str, ...] = (
    "user_id",
    "video_id",
    "date",
    "hourmin",
    "time_ms",
    "is_click",
    "is_like",
    "is_follow",
    "is_comment",
    "is_forward",
    "is_hate",
    "long_view",
    "play_time_ms",
    "duration_ms",
    "profile_stay_time",
    "comment_stay_time",
    "is_profile_enter",
    "is_rand",
    "tab",
)


def kuairand_path() -> Path:
    """Where the shipped copy lies (a real file: the package is installed unzipped)."""
    resource = importlib.resources.files("trustfeed.data") / "kuairand" / KUAIRAND_FILE
    return Path(str(resource))


def load_kuairand(path: str | Path | None = None) -> pd.DataFrame:
    """The random-exposure log, typed, with schema columns added.

    All file columns are int64 except ``duration_ms`` (float64, as in the
    interaction schema). Added: ``item_id`` (= ``video_id``), ``timestamp``
    (``time_ms`` / 1000, seconds) and ``watch_ms`` (= ``play_time_ms``), so the
    frame also passes :func:`~trustfeed.data.validate_interactions`. Rows keep
    the file's order (by user, then time). ``path`` defaults to the shipped
    copy; a plain ``.csv`` works too.

    >>> log = load_kuairand()
    >>> len(log), log["user_id"].nunique(), log["item_id"].nunique()
    (43028, 1000, 7388)
    """
    source = kuairand_path() if path is None else Path(path)
    try:
        frame = pd.read_csv(source, dtype=dict.fromkeys(KUAIRAND_COLUMNS, "int64"))
    except FileNotFoundError as exc:
        raise DataError(f"{source}: no such file") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise DataError(f"{source}: not a KuaiRand log: {exc}") from exc
    if tuple(frame.columns) != KUAIRAND_COLUMNS:
        raise DataError(
            f"{source}: columns {list(frame.columns)} are not KuaiRand's {list(KUAIRAND_COLUMNS)}"
        )
    return frame.assign(
        duration_ms=frame["duration_ms"].astype(np.float64),
        item_id=frame["video_id"],
        timestamp=frame["time_ms"].to_numpy(np.float64) / 1000.0,
        watch_ms=frame["play_time_ms"].astype(np.float64),
    )

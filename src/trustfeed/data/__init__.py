"""Interaction data: the schema, validation, loaders and train/test splits.

Everything that enters trustfeed as interactions passes
:func:`validate_interactions`, so the rest of the code can rely on the dtypes
of :mod:`trustfeed.data._schema`. Sources: a user's own CSV/Parquet log
(:func:`load_interactions`), the public benchmarks (:func:`load_dataset`) and
the shipped KuaiRand random-exposure log (:func:`load_kuairand`).
"""

from trustfeed.data._benchmarks import (
    DATASET_NAMES,
    Dataset,
    load_dataset,
    load_movielens,
    load_sequences,
)
from trustfeed.data._files import load_interactions
from trustfeed.data._kuairand import KUAIRAND_SHA256, kuairand_path, load_kuairand
from trustfeed.data._schema import (
    EVENTS,
    ITEM_COLUMNS,
    NEGATIVE_EVENTS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    DataError,
)
from trustfeed.data._split import (
    MIN_INTERACTIONS_TO_SPLIT,
    Split,
    SplitProtocol,
    leave_last_out,
    split_for,
    temporal_split,
)
from trustfeed.data._validate import validate_interactions

__all__ = [
    "DATASET_NAMES",
    "EVENTS",
    "ITEM_COLUMNS",
    "KUAIRAND_SHA256",
    "MIN_INTERACTIONS_TO_SPLIT",
    "NEGATIVE_EVENTS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "DataError",
    "Dataset",
    "Split",
    "SplitProtocol",
    "kuairand_path",
    "leave_last_out",
    "load_dataset",
    "load_interactions",
    "load_kuairand",
    "load_movielens",
    "load_sequences",
    "split_for",
    "temporal_split",
    "validate_interactions",
]

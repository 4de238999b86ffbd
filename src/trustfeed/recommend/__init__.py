"""The licensed recommendation algorithm (engine): state, sources, ranking, reasons."""

from trustfeed.recommend._base import (
    PAD,
    InteractionMatrix,
    NotFittedError,
    PersistentModel,
    RecommenderModel,
    RecommendError,
    UnknownItemError,
    top_k,
)
from trustfeed.recommend._config import RecommenderConfig
from trustfeed.recommend._features import ImpressionFeatures
from trustfeed.recommend._ranker import MultiTaskRanker, RankerError
from trustfeed.recommend._reasons import Reason
from trustfeed.recommend._recommender import Recommender
from trustfeed.recommend._table import CollisionlessTable

__all__ = [
    "PAD",
    "CollisionlessTable",
    "ImpressionFeatures",
    "InteractionMatrix",
    "MultiTaskRanker",
    "NotFittedError",
    "PersistentModel",
    "RankerError",
    "Reason",
    "RecommendError",
    "Recommender",
    "RecommenderConfig",
    "RecommenderModel",
    "UnknownItemError",
    "top_k",
]

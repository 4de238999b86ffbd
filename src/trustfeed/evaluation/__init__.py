"""Offline evaluation: top-k ranking metrics and impression-level metrics (numpy).

:func:`evaluate_ranking` / :func:`evaluate_model` score full-ranking
recommendations against held-out items (conventions in
:mod:`trustfeed.evaluation._ranking`); :func:`grouped_auc` and
:func:`grouped_ndcg` score how a model orders logged impressions
(:mod:`trustfeed.evaluation._impressions`).
"""

from trustfeed.evaluation._impressions import grouped_auc, grouped_ndcg
from trustfeed.evaluation._ranking import evaluate_model, evaluate_ranking, truth_by_user

__all__ = ["evaluate_model", "evaluate_ranking", "grouped_auc", "grouped_ndcg", "truth_by_user"]

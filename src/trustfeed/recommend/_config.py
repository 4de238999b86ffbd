"""The engine's hyper-parameters: one validated, documented, saveable object."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RecommenderConfig(BaseModel):
    """Defaults are the best configuration measured across the benchmark datasets
    (see ``trustfeed bench quality``); ``Recommender.param_grid`` lists the small
    validation grid tuned per dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Item-item model (sequence-aware EASE).
    window: int = Field(30, ge=1, le=256, description="Pair items up to this many positions apart.")
    proximity: float = Field(10.0, gt=0, description="Pair weight exp(-gap / proximity).")
    l2: float = Field(10.0, gt=0, description="EASE ridge, relative to the mean item count.")
    neighbors: int = Field(512, ge=8, description="Weights kept per item row.")
    max_dense_items: int = Field(16_000, ge=16, description="Largest exact EASE solve.")
    transition: float = Field(0.0, ge=0, description="Weight of last-item transitions.")
    # User profile.
    recency: float = Field(6.0, gt=0, description="Profile weight exp(-rank / recency).")
    history_size: int = Field(64, ge=1, le=1024, description="Recent positives kept per user.")
    # Candidate sources blended into the score when no multi-task ranker is trained.
    embedding_dim: int = Field(48, ge=0, le=512, description="ANN embedding size; 0 = no ANN.")
    ann_candidates: int = Field(200, ge=0, description="Items the ANN source nominates.")
    ann_weight: float = Field(0.0, ge=0, description="Blend weight of the ANN similarity.")
    trending_half_life_s: float = Field(86_400.0, gt=0, description="Half-life of trending.")
    trending_weight: float = Field(0.0, ge=0, description="Blend weight of trending.")
    following_weight: float = Field(0.2, ge=0, description="Bonus for followed creators.")
    # Exploration and re-ranking.
    fresh_window_s: float = Field(3 * 86_400.0, gt=0, description="An item is fresh this long.")
    fresh_max_views: int = Field(50, ge=0, description="…and while it has fewer views.")
    explore_share: float = Field(0.0, ge=0, le=0.5, description="Feed share for fresh items.")
    creator_cap: int = Field(0, ge=0, description="Most items per creator in a feed; 0 = no cap.")
    eligible_by_default: bool = Field(
        True,
        description="False: serve only items marked eligible (set_blocked(ids, False)); "
        "what a platform with a moderation gate runs.",
    )
    topic_cap: int = Field(0, ge=0, description="Most items per topic in a feed; 0 = no cap.")
    # Events.
    positive_watch_ratio: float = Field(
        0.3, ge=0, le=1, description="A plain view counts as positive from this watch ratio."
    )
    train_ranker: bool = Field(True, description="Learn the multi-task ranker when labels exist.")
    ranker_weight: float = Field(
        0.1, ge=0, le=1, description="Share of the ranker's score in the final order."
    )
    # Collisionless tables.
    admit_after: int = Field(1, ge=1, description="Occurrences before an id gets its own row.")
    expire_after_s: float | None = Field(None, gt=0, description="Expire ids unseen this long.")

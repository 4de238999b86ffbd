"""The algorithm configuration a package carries, validated against the engine it will run on.

What a licensor may set is exactly what the custodian's engine understands:
the model class comes from a fixed table (a package never names code to
import), hyper-parameters must be :class:`RecommenderConfig` fields with valid
values, ranking weights are its ``*_weight`` fields, and the feature list must
be the engine's own, so the package discloses every signal the ranker uses.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trustfeed.recommend._config import RecommenderConfig
from trustfeed.recommend._recommender import Recommender
from trustfeed.recommend._scoring import FEATURES
from trustfeed.recommend.package._errors import PackageError

#: The format (and its version) of ``config.json``; an unknown one is refused.
CONFIG_FORMAT = "trustfeed.algorithm-config/v1"
#: The only model classes a package may name; a name maps to code the custodian ships.
MODEL_CLASSES: dict[str, type[Recommender]] = {"Recommender": Recommender}
#: The ranker features the engine computes (``trustfeed.recommend._scoring.FEATURES``).
ENGINE_FEATURES: tuple[str, ...] = tuple(FEATURES)
_WEIGHT_SUFFIX = "_weight"


def ranking_weight_names() -> tuple[str, ...]:
    """Ranking weights a package may set: ``ann`` for ``ann_weight``, and so on."""
    fields = RecommenderConfig.model_fields
    return tuple(sorted(n[: -len(_WEIGHT_SUFFIX)] for n in fields if n.endswith(_WEIGHT_SUFFIX)))


class AlgorithmConfig(BaseModel):
    """``config.json`` of a package: what the algorithm is and how it is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = Field(CONFIG_FORMAT, description="Always " + CONFIG_FORMAT)
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
    model_class: str = Field(description="One of MODEL_CLASSES.")
    seed: int = Field(42, ge=0, lt=2**31)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    features: list[str] = Field(description="The features the ranker uses, disclosed.")
    ranking_weights: dict[str, float] = Field(default_factory=dict)
    description: str = Field("", max_length=4000)

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value != CONFIG_FORMAT:
            raise ValueError(f"unknown format {value!r}; this engine reads {CONFIG_FORMAT!r}")
        return value

    def engine_params(self) -> dict[str, Any]:
        """Hyper-parameters with the ranking weights folded in: what the model is built with."""
        weights = {f"{name}{_WEIGHT_SUFFIX}": value for name, value in self.ranking_weights.items()}
        return {**self.hyperparameters, **weights}

    def engine_config(self) -> RecommenderConfig:
        return RecommenderConfig(**self.engine_params())


def parse_config(data: bytes) -> AlgorithmConfig:
    """Parse and check ``config.json`` against this engine; PackageError says what is wrong."""
    try:
        config = AlgorithmConfig.model_validate_json(data)
    except ValidationError as exc:
        raise PackageError(f"config.json is not a valid algorithm configuration: {exc}") from exc
    check_against_engine(config)
    return config


def check_against_engine(config: AlgorithmConfig) -> None:
    """Refuse anything this engine would not run exactly as the package says."""
    if config.model_class not in MODEL_CLASSES:
        known = ", ".join(sorted(MODEL_CLASSES))
        raise PackageError(f"unknown model class {config.model_class!r} (known: {known})")
    _check_weights(config)
    _check_features(config.features)
    try:
        config.engine_config()
    except ValidationError as exc:
        raise PackageError(f"hyper-parameters the engine refuses: {exc}") from exc


def _check_weights(config: AlgorithmConfig) -> None:
    allowed = ranking_weight_names()
    unknown = sorted(set(config.ranking_weights) - set(allowed))
    if unknown:
        raise PackageError(f"unknown ranking weights {unknown} (known: {', '.join(allowed)})")
    # Why: one value per knob, so the review shows one number, not two that disagree.
    twice = sorted(
        n for n in config.ranking_weights if f"{n}{_WEIGHT_SUFFIX}" in config.hyperparameters
    )
    if twice:
        raise PackageError(f"set both as ranking weight and hyper-parameter: {twice}")


def _check_features(features: list[str]) -> None:
    if len(set(features)) != len(features):
        raise PackageError("the feature list names a feature twice")
    unknown = sorted(set(features) - set(ENGINE_FEATURES))
    if unknown:
        raise PackageError(
            f"features this engine does not compute: {unknown} (it computes: "
            f"{', '.join(ENGINE_FEATURES)})"
        )
    undeclared = [f for f in ENGINE_FEATURES if f not in features]
    if undeclared:
        # Why: the ranker uses every engine feature; a package must disclose all of them.
        raise PackageError(f"the feature list omits features the ranker uses: {undeclared}")

"""Typed settings for the CLI and service entry points.

Library code never reads the environment; the CLI builds one ``Settings``
and passes plain keyword arguments down.

Environment variables (prefix ``TRUSTFEED_``):

=============================  ===========================================  ===========
variable                       meaning                                      default
=============================  ===========================================  ===========
``TRUSTFEED_HOME``             directory for models, logs and local data    ``./.trustfeed``
``TRUSTFEED_SEED``             seed for every random generator              ``42``
``TRUSTFEED_DATASETS_DIR``     where the benchmark datasets live            ``../shared/datasets``
``TRUSTFEED_ADMIT_AFTER``      occurrences before an id gets its own row    ``1``
``TRUSTFEED_EXPIRE_AFTER_S``   seconds unseen after which an id expires     ``0`` (never)
``TRUSTFEED_LOG_LEVEL``        ``DEBUG`` … ``ERROR``                        ``INFO``
=============================  ===========================================  ===========

A sample file, ``trustfeed.sample.env``, lists the same variables; the tests load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All process-level configuration, validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix="TRUSTFEED_", env_file=None, extra="forbid")

    home: Path = Field(Path(".trustfeed"), description="Models, logs and local data.")
    seed: int = Field(42, ge=0, description="Seed for every random generator.")
    datasets_dir: Path = Field(
        Path("../shared/datasets"), description="Where the benchmark datasets live."
    )
    admit_after: int = Field(1, ge=1, description="Occurrences before an id gets its own row.")
    expire_after_s: float = Field(
        0.0, ge=0.0, description="Seconds unseen after which an id expires; 0 = never."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def load_settings(env_file: str | Path | None = None) -> Settings:
    """Read settings from the environment and, if given, an env file."""
    if env_file is None:
        return Settings()
    return Settings(_env_file=str(env_file))

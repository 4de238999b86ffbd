"""Typed settings for the CLI and service entry points.

Library code never reads the environment; the CLI builds one ``Settings``
and passes plain keyword arguments down.

Environment variables (prefix ``TRUSTFEED_``):

============================  =====================================  ===============================
variable                      meaning                                default
============================  =====================================  ===============================
``TRUSTFEED_HOME``            models, logs and local data            ``./.trustfeed``
``TRUSTFEED_SEED``            seed for every random generator        ``42``
``TRUSTFEED_DATASETS_DIR``    where the benchmark datasets live      ``../shared/datasets``
``TRUSTFEED_ADMIT_AFTER``     uses before an id gets its own row     ``1``
``TRUSTFEED_EXPIRE_AFTER_S``  seconds unseen before an id expires    ``0`` (never)
``TRUSTFEED_LOG_LEVEL``       ``DEBUG`` … ``ERROR``                  ``INFO``
``TRUSTFEED_STORE_URL``       custody store (ledger, vault, grants)  ``sqlite:///<home>/custody.db``
``TRUSTFEED_KEYFILE``         custodian key file (KEKs, pseudonyms)  ``<home>/keys/custodian.json``
``TRUSTFEED_LEDGER_KEY``      ledger checkpoint signing key          ``<home>/keys/ledger.key``
``TRUSTFEED_LEDGER_ORIGIN``   origin line of checkpoints             ``trustfeed.local/ledger``
``TRUSTFEED_DOMESTIC``        domestic jurisdiction (ISO 3166)       ``US``
============================  =====================================  ===============================

A sample file, ``trustfeed.sample.env``, lists the same variables; the tests load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All process-level configuration, validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="TRUSTFEED_", env_file=None, env_ignore_empty=True, extra="forbid"
    )

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
    store_url: str | None = Field(
        None, description="Custody store URL (sqlite:///… or postgresql://…); default under home."
    )
    keyfile: Path | None = Field(None, description="Custodian key file; default under home.")
    ledger_key: Path | None = Field(None, description="Ledger signing key; default under home.")
    ledger_origin: str = Field(
        "trustfeed.local/ledger", min_length=1, description="Origin line of checkpoints."
    )
    domestic: str = Field(
        "US", pattern=r"^[A-Z]{2}$", description="Domestic jurisdiction (ISO 3166-1 alpha-2)."
    )

    @property
    def custody_store_url(self) -> str:
        """The custody store, defaulting to an SQLite file under ``home``."""
        return self.store_url or f"sqlite:///{self.home / 'custody.db'}"

    @property
    def custody_keyfile(self) -> Path:
        return self.keyfile or self.home / "keys" / "custodian.json"

    @property
    def ledger_key_file(self) -> Path:
        return self.ledger_key or self.home / "keys" / "ledger.key"


def load_settings(env_file: str | Path | None = None) -> Settings:
    """Read settings from the environment and, if given, an env file."""
    if env_file is None:
        return Settings()
    return Settings(_env_file=str(env_file))

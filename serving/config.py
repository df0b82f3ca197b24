"""Settings of the service alone (prefix ``RECSYS_SERVING_``), read once from the environment.

The platform-wide values (data directory, Redis, MLflow, model name) stay in
:class:`recsys.platform.settings.Settings`; these only tune the request path and the control plane.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.experiments import validate


class ServingSettings(BaseSettings):
    """Knobs of the recommendation service."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_SERVING_", extra="ignore")

    workers: int = Field(default=1, ge=1, description="BentoML worker processes.")
    cache_ttl_seconds: int = Field(
        default=300, ge=0, description="Lifetime of a cached response; 0 disables the cache."
    )
    cache_write_linger_seconds: float = Field(
        default=0.005, ge=0.0, le=1.0,
        description="The cache writer waits this long after a put to write the puts of that "
        "window in one round trip.",
    )
    diversity: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="MMR weight of diversity against ranker relevance (0: pure relevance).",
    )
    max_per_category: int = Field(
        default=0, ge=0, description="At most this many items per primary category (0: no cap)."
    )
    compiled_ranker: bool = Field(
        default=True,
        description="Score with the ranker compiled by lleaves (same scores, several times "
        "faster); false keeps LightGBM's predict.",
    )
    approximate_from: int = Field(
        default=100_000, ge=1,
        description="Catalog size from which ALS candidates come from a faiss IVF index "
        "(approximate) instead of scoring every item.",
    )
    model_poll_seconds: float = Field(
        default=30.0, ge=0.0,
        description="How often the MLflow champion alias and Feast materialization are checked "
        "(0: never; the model loaded at start is kept).",
    )
    redis_retry_seconds: float = Field(
        default=1.0, ge=0.0,
        description="After a Redis failure, requests skip Redis (and fall back) for this long.",
    )
    redis_timeout_seconds: float = Field(
        default=0.5, gt=0, description="Socket timeout of every Redis call of the service."
    )
    experiments: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="A/B tests: experiment id -> {MLflow alias: traffic weight}, as JSON "
        '(e.g. {"ranker-v2": {"champion": 0.5, "challenger": 0.5}}).',
    )

    @field_validator("experiments")
    @classmethod
    def _valid_experiments(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return validate(value)

    dagster_host: str = Field(default="127.0.0.1", description="Dagster webserver host.")
    dagster_port: int = Field(default=3001, description="Dagster webserver port.")
    dagster_location: str = Field(default="recsys", description="Dagster code location name.")
    retrain_job: str = Field(default="retrain_job", description="Dagster job started by /train.")


@lru_cache(maxsize=1)
def get_serving_settings() -> ServingSettings:
    """The process-wide serving settings (tests call ``get_serving_settings.cache_clear()``)."""
    return ServingSettings()

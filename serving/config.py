"""Settings of the service alone (prefix ``RECSYS_SERVING_``), read once from the environment.

The platform-wide values (data directory, Redis, MLflow, model name) stay in
:class:`recsys.platform.settings.Settings`; these only tune the request path and the control plane.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.models.exploration import EXPLORE_SLOTS
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
    explore_slots: int = Field(
        default=EXPLORE_SLOTS, ge=0,
        description="Places per list for new items (the content generator's, in its order; "
        "0: none).",
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
        default=0.25, gt=0, description="Socket timeout of every Redis call of the service: a "
        "slower Redis trips the breaker and requests fall back instead of queueing.",
    )
    experiments: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="A/B tests: experiment id -> {MLflow alias: traffic weight}, as JSON "
        '(e.g. {"ranker-v2": {"champion": 0.5, "challenger": 0.5}}).',
    )

    impressions: bool = Field(
        default=True, description="Log every served list as an impression (off: responses "
        "keep their rec_id, nothing is logged; for benchmarks and replicas without a log).")
    experiment_refresh_seconds: float = Field(
        default=5.0, ge=0.0, description="How often the running experiments are re-read from "
        "the experiment store (a stop or a rollback takes effect within it; 0: never).")

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


class AuthSettings(BaseSettings):
    """Authentication and abuse limits (prefix ``RECSYS_AUTH_``; ``RECSYS_AUTH=off`` turns
    authentication off, which the service then says in its log)."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_AUTH_", extra="ignore",
                                      populate_by_name=True)

    mode: Literal["on", "off"] = Field(
        default="on", validation_alias=AliasChoices("RECSYS_AUTH", "RECSYS_AUTH_MODE"),
        description="'off' serves without authentication (development only).")
    keys_file: Path | None = Field(
        default=None, description="API key store (digests only); default "
        "<data_dir>/auth/keys.json.")
    jwt_algorithms: list[str] = Field(
        default=["HS256"], description="Accepted JWT algorithms, e.g. [\"RS256\"].")
    jwt_secret: SecretStr | None = Field(default=None, description="HMAC key of HS* tokens.")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM key of RS* tokens.")
    jwt_jwks_file: Path | None = Field(default=None, description="JWKS file of RS* tokens.")
    jwt_audience: str | None = Field(default=None, description="Required `aud` claim.")
    jwt_issuer: str | None = Field(default=None, description="Required `iss` claim.")
    public_metrics: bool = Field(default=True, description="GET /metrics without credentials.")
    public_docs: bool = Field(default=True, description="API reference without credentials.")
    user_rate_limit: str = Field(default="500/minute",
                                 description="Requests per end user (`limits` notation).")
    key_rate_limit: str = Field(default="600000/minute",
                                description="Requests per API key or token subject (the "
                                "default, 10,000 a second, only stops a runaway client).")
    max_body_bytes: int = Field(default=1_048_576, ge=1024,
                                description="Largest request body; larger ones get 413.")


@lru_cache(maxsize=1)
def get_auth_settings() -> AuthSettings:
    """The process-wide authentication settings (tests call ``cache_clear()``)."""
    return AuthSettings()

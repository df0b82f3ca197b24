"""Platform settings, read once from environment variables.

Every component (Dagster assets, the Feast repo, the BentoML service, the CLIs) takes its
configuration from :class:`Settings`; nothing else reads the environment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _under_data_dir(*parts: str) -> property:
    """A read-only :class:`Settings` property: the path ``parts`` under ``data_dir``."""

    def path(settings: Settings) -> Path:
        return settings.data_dir.joinpath(*parts)

    return property(path)


class Settings(BaseSettings):
    """Environment-driven configuration (prefix ``RECSYS_``, plus the tools' own variables)."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        default=PROJECT_ROOT / ".data",
        description="Root of everything the platform writes locally (event log, warehouse, "
        "MLflow, Dagster home, embedded Redis).",
    )
    feature_repo_dir: Path = Field(
        default=PROJECT_ROOT / "feature_repo",
        description="Feast repo path: relative FileSource paths and the registry resolve here.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "RECSYS_REDIS_URL"),
        description="An existing Redis; unset means the embedded Valkey server is used.",
    )
    embedded_redis_port: int = Field(default=6390, description="Port of the embedded Valkey.")
    embedded_redis_maxmemory: str = Field(
        default="2gb", description="Memory cap of the embedded Valkey (`maxmemory`).")
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "RECSYS_MLFLOW_TRACKING_URI"),
    )
    feast_registry_url: str | None = Field(
        default=None,
        description="SQL registry URL (production profile); unset means a local registry file.",
    )
    model_name: str = Field(default="recsys", description="MLflow registered model name.")
    gate_min_ndcg: float = Field(default=0.01, ge=0, description="Promotion floor: the "
                                 "challenger's holdout NDCG@k.")
    gate_min_coverage: float = Field(default=0.005, ge=0, description="Promotion floor: "
                                     "catalog coverage of the challenger's lists.")
    gate_min_events: int = Field(default=1000, ge=0, description="Promotion floor: training "
                                 "interactions (user-item pairs).")
    gate_min_users: int = Field(default=50, ge=0, description="Promotion floor: training users.")
    gate_max_drift: float = Field(default=0.6, ge=0, le=1, description="Promotion limit: total "
                                  "variation distance of item shares from the champion's window.")
    event_max_future_seconds: int = Field(
        default=300, ge=0, description="How far ahead of this server's clock an event's time "
        "may be (clock skew of producers).")
    event_retention_days: int | None = Field(
        default=None, ge=1, description="Events older than this many days are refused "
        "(unset: no lower bound, e.g. to import historical data).")
    attribution_window_hours: float = Field(
        default=24.0, gt=0, description="An outcome without a rec_id is attributed to the "
        "latest impression of its item for its user at most this long before it.")

    event_stream: Literal["local", "redis", "kafka"] = Field(
        default="local", description="Where the API puts accepted events: 'local' writes the "
        "durable log and pushes online itself (one machine); 'redis' appends to a shared Redis "
        "stream that `python -m recsys.features.stream_consumer` processes (several replicas); "
        "'kafka' is not implemented (no broker runs here).")
    event_stream_url: str | None = Field(
        default=None, description="Redis of the event stream; unset: the platform's Redis "
        "(REDIS_URL or the embedded Valkey).")
    event_stream_key: str = Field(default="recsys:events", description="The stream's key.")
    event_stream_group: str = Field(default="event-writers",
                                    description="Consumer group of the stream consumers.")
    event_stream_maxlen: int = Field(
        default=5_000_000, ge=1000, description="Approximate bound on the stream's length "
        "(XADD MAXLEN ~): entries beyond it are trimmed oldest first, read or not, so it must "
        "exceed the events that arrive while every consumer is down.")
    event_stream_claim_idle_ms: int = Field(
        default=30_000, ge=1, description="A consumer takes over entries another consumer "
        "read but did not acknowledge for this long (that consumer died mid-batch).")

    # Where each part of the platform keeps its files under ``data_dir``.
    #: Durable append-only event log, one folder per UTC day.
    event_log_dir = _under_data_dir("events", "log")
    #: Accepted events not yet pushed online (Redis was down), until replayed; with a stream,
    #: the events and impressions not yet in it.
    push_outbox_dir = _under_data_dir("events", "outbox")
    #: Served lists (impressions), one folder per UTC day, like the event log.
    impression_log_dir = _under_data_dir("events", "impressions")
    #: Drop folder for event files (CSV, Parquet, JSONL) picked up by the sensor.
    inbox_dir = _under_data_dir("events", "inbox")
    #: The experiments, their decisions and audit log (SQLite).
    experiments_db = _under_data_dir("experiments", "experiments.db")
    #: Validated tables and the catalog, written by the Dagster assets.
    warehouse_dir = _under_data_dir("warehouse")
    #: Rows that failed validation, with their reason.
    quarantine_dir = _under_data_dir("quarantine")
    #: Artifacts of the local MLflow tracking store.
    mlflow_artifact_dir = _under_data_dir("mlflow", "artifacts")
    #: Values the pipeline's steps hand each other (models, frames), one folder each.
    artifacts_dir = _under_data_dir("artifacts")
    #: BentoML's model store (``BENTOML_HOME``), shared by the deploy asset and the service.
    bentoml_home = _under_data_dir("bentoml")

    @property
    def offline_store_dir(self) -> Path:
        """Feature tables that Feast FileSources read (``data/`` inside the Feast repo)."""
        return self.feature_repo_dir / "data"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI; local SQLite under the data directory by default."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.data_dir / 'mlflow' / 'mlflow.db'}"


def use_bentoml_home(settings: Settings) -> None:
    """Point BentoML at the platform's model store; call before ``import bentoml``.

    BentoML reads ``BENTOML_HOME`` once, at import; an explicit value in the environment wins.
    """
    os.environ.setdefault("BENTOML_HOME", str(settings.bentoml_home))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()

"""Dagster resources: the platform's storage, Feast, MLflow and Redis, built from settings.

Every resource takes its values from :class:`recsys.platform.settings.Settings` in
:func:`build_resources`, the one place where the environment reaches the Dagster code.
"""


import os
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
from feast import FeatureStore
from mlflow import MlflowClient

from orchestration.defs.io_managers import ArtifactIOManager
from recsys.evaluation.tracking import ensure_experiment
from recsys.events.event_log import EventLog
from recsys.features.store import get_feature_store
from recsys.platform.redis_server import RedisTarget, resolve_redis
from recsys.platform.settings import Settings, get_settings


class PlatformStorage(dg.ConfigurableResource):
    """Local (or mounted) storage: the event log, the warehouse tables, the quarantine."""

    data_dir: str

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=Path(self.data_dir))

    def event_log(self) -> EventLog:
        return EventLog(self.settings.event_log_dir)

    def table_dir(self, name: str) -> Path:
        """Folder of one warehouse table (partitioned tables use ``date=YYYY-MM-DD/`` below)."""
        path = self.settings.warehouse_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def validated_event_ids(self, exclude_days: Sequence[object] = ()) -> set[str]:
        """Event ids of the validated partitions, except those of ``exclude_days``."""
        skip = {f"date={day}" for day in exclude_days}
        ids: set[str] = set()
        for part in sorted(self.table_dir("validated_events").glob("date=*/part.parquet")):
            if part.parent.name not in skip:
                ids.update(pd.read_parquet(part, columns=["event_id"])["event_id"].tolist())
        return ids

    def quarantine_dir(self) -> Path:
        path = self.settings.quarantine_dir
        path.mkdir(parents=True, exist_ok=True)
        return path


class RedisResource(dg.ConfigurableResource):
    """The online store's Redis: ``url`` if given, else the embedded Valkey (started on demand)."""

    url: str | None = None
    data_dir: str
    embedded_port: int = 6390

    def target(self) -> RedisTarget:
        settings = Settings(
            data_dir=Path(self.data_dir), redis_url=self.url, embedded_redis_port=self.embedded_port
        )
        return resolve_redis(settings)


class FeastResource(dg.ConfigurableResource):
    """The Feast feature store of ``feature_repo/`` on the platform's Redis."""

    repo_dir: str
    registry_url: str | None = None
    redis: dg.ResourceDependency[RedisResource]

    def store(self) -> FeatureStore:
        target = self.redis.target()
        settings = Settings(
            data_dir=Path(self.redis.data_dir),
            feature_repo_dir=Path(self.repo_dir),
            redis_url=target.url,
            feast_registry_url=self.registry_url,
        )
        return get_feature_store(settings)


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking and registry (local SQLite by default)."""

    tracking_uri: str
    artifact_dir: str
    model_name: str
    experiment: str = "recsys"

    def client(self) -> MlflowClient:
        mlflow.set_tracking_uri(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri)

    def experiment_id(self) -> str:
        """The experiment's id, created on first use with artifacts under ``artifact_dir``."""
        return ensure_experiment(self.client(), self.experiment, Path(self.artifact_dir))


def build_resources(
    settings: Settings | None = None,
) -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManager]:
    """The resources of one profile, from the settings (environment) of this process."""
    settings = settings or get_settings()
    redis = RedisResource(
        url=_secret(settings.redis_url, "REDIS_URL", "RECSYS_REDIS_URL"),
        data_dir=str(settings.data_dir),
        embedded_port=settings.embedded_redis_port,
    )
    return {
        "io_manager": ArtifactIOManager(base_dir=str(settings.artifacts_dir)),
        "storage": PlatformStorage(data_dir=str(settings.data_dir)),
        "redis": redis,
        "feast": FeastResource(
            repo_dir=str(settings.feature_repo_dir),
            registry_url=_secret(settings.feast_registry_url, "RECSYS_FEAST_REGISTRY_URL"),
            redis=redis,
        ),
        "tracking": MLflowResource(
            tracking_uri=_secret(settings.tracking_uri, "MLFLOW_TRACKING_URI",
                                 "RECSYS_MLFLOW_TRACKING_URI"),
            artifact_dir=str(settings.mlflow_artifact_dir),
            model_name=settings.model_name,
        ),
    }


def _secret(value: str | None, *variables: str) -> str | dg.EnvVar | None:
    """A connection string that may hold a password: when it came from the environment, the
    resource reads the variable itself (``dg.EnvVar``), so the value never appears in a
    run's configuration in Dagster's storage or UI."""
    for name in variables:
        if value is not None and os.environ.get(name) == value:
            return dg.EnvVar(name)
    return value

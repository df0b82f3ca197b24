"""Dagster resources: the platform's storage, Feast, MLflow and Redis, built from settings.

Every resource takes its values from :class:`recsys.platform.settings.Settings` in
:func:`build_resources`, the one place where the environment reaches the Dagster code.
"""


from pathlib import Path

import dagster as dg
import mlflow
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
        url=settings.redis_url,
        data_dir=str(settings.data_dir),
        embedded_port=settings.embedded_redis_port,
    )
    return {
        "io_manager": ArtifactIOManager(base_dir=str(settings.artifacts_dir)),
        "storage": PlatformStorage(data_dir=str(settings.data_dir)),
        "redis": redis,
        "feast": FeastResource(
            repo_dir=str(settings.feature_repo_dir),
            registry_url=settings.feast_registry_url,
            redis=redis,
        ),
        "tracking": MLflowResource(
            tracking_uri=settings.tracking_uri,
            artifact_dir=str(settings.mlflow_artifact_dir),
            model_name=settings.model_name,
        ),
    }

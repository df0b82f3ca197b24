"""What ``GET /api/v1/recs/models`` reports: the recommender's versions in the MLflow registry."""

from __future__ import annotations

from datetime import UTC, datetime

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from serving.schemas import ModelVersionInfo


class UnknownModelVersionError(LookupError):
    """No such registered version."""


def _client(tracking_uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri)


def _aliases(client: MlflowClient, name: str) -> dict[str, list[str]]:
    """Aliases by version (``search_model_versions`` leaves them out of its results)."""
    by_version: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    return by_version


def _info(client: MlflowClient, version: ModelVersion, serving: str,
          aliases: dict[str, list[str]]) -> ModelVersionInfo:
    metrics: dict[str, float] = {}
    if version.run_id:
        try:
            metrics = dict(client.get_run(version.run_id).data.metrics)
        except MlflowException:
            metrics = {}
    created = datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC)
    return ModelVersionInfo(
        version=str(version.version), aliases=sorted(aliases.get(str(version.version), [])),
        status=str(version.status), run_id=version.run_id, created_at=created.isoformat(),
        tags=dict(version.tags or {}), metrics=metrics, serving=str(version.version) == serving,
    )


def list_versions(tracking_uri: str, name: str, serving: str) -> list[ModelVersionInfo]:
    """Every registered version of ``name``, newest first."""
    client = _client(tracking_uri)
    versions = client.search_model_versions(f"name = '{name}'")
    versions = sorted(versions, key=lambda v: int(v.version), reverse=True)
    aliases = _aliases(client, name) if versions else {}
    return [_info(client, v, serving, aliases) for v in versions]


def get_version(tracking_uri: str, name: str, version: str, serving: str) -> ModelVersionInfo:
    """One version of ``name`` (a number, or an alias such as ``champion``)."""
    client = _client(tracking_uri)
    try:
        found = (client.get_model_version(name, version) if version.isdigit()
                 else client.get_model_version_by_alias(name, version))
    except MlflowException as exc:
        raise UnknownModelVersionError(f"{name} has no version or alias {version!r}") from exc
    return _info(client, found, serving, _aliases(client, name))

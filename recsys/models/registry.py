"""The MLflow model registry: logging the recommender, aliases for promotion and rollback.

A registered version is an MLflow pyfunc whose artifact is the plain-file recommender bundle
(:meth:`recsys.models.recommender.Recommender.save`). The alias ``challenger`` marks the newest
trained version, ``champion`` the one serving, ``previous_champion`` the one a rollback
restores. Promotion and rollback only move aliases.

The platform loads a version by reading its bundle (:func:`load_recommender`), never by
unpickling the pyfunc wrapper: the wrapper names the module its class lived in when it was
logged (``training.registry`` before the library was laid out by what it holds), and the
bundle is plain files that the current code reads whichever code wrote them.
"""

from __future__ import annotations

import importlib.metadata
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import MLMODEL_FILE_NAME as MLMODEL

from recsys.models.recommender import Recommender

logger = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous_champion"
_REQUIREMENTS = ("lightgbm", "implicit", "pandas", "numpy", "scipy", "pyarrow")


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper: loads the bundle; ``predict`` scores candidate rows with the ranker.

    ``predict`` takes candidate rows already joined with their Feast features (the columns
    :func:`recsys.models.ranker.feature_matrix` reads) and returns them with a ``score`` column.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.recommender = Recommender.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ANN001
        return model_input.assign(score=self.recommender.score(model_input))


def log_recommender(recommender: Recommender, model_name: str, run_id: str) -> ModelVersion:
    """Log the bundle as a pyfunc in ``run_id`` and register it as a new version."""
    requirements = [f"{p}=={importlib.metadata.version(p)}" for p in _REQUIREMENTS]
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
        bundle = Path(tmp) / "bundle"
        recommender.save(bundle)
        info = mlflow.pyfunc.log_model(
            name="recommender",
            python_model=RecommenderPyfunc(),
            artifacts={"bundle": str(bundle)},
            pip_requirements=requirements,
            code_paths=[str(Path(__file__).parents[1])],  # the recsys package: self-contained
        )
    version = mlflow.register_model(info.model_uri, model_name)
    logger.info("registered %s version %s from run %s", model_name, version.version, run_id)
    return version


@dataclass(frozen=True)
class ModelRelease:
    """A registered model version and the holdout figures behind it (``<model>.<metric>_at_<k>``,
    logged in run ``run_id``)."""

    name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    k: int


def register_version(recommender: Recommender, model_name: str, run_id: str,
                     metrics: dict[str, float], k: int) -> ModelRelease:
    """Log ``recommender`` in the training run ``run_id``, register it as a new version and
    tag it with its lineage (feature service, data window) and its holdout NDCG. No alias
    moves: ``challenger`` and ``champion`` follow only once the promotion gate passed."""
    client = MlflowClient()
    version = log_recommender(recommender, model_name, run_id).version
    window = recommender.manifest.get("data_window", {})
    tags = {
        "feature_service": recommender.manifest.get("feature_service"),
        "data_window_start": window.get("start"),
        "data_window_end": window.get("end"),
        f"ndcg_at_{k}": metrics.get(f"ranker.ndcg_at_{k}"),
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, str(value))
    return ModelRelease(model_name, str(version), run_id, dict(metrics), k)


def alias_version(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None (no such model or alias)."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def promote(client: MlflowClient, model_name: str, version: str) -> str | None:
    """Point ``challenger`` and ``champion`` at ``version``; the former champion becomes
    ``previous_champion``. Returns the former champion's version."""
    client.set_registered_model_alias(model_name, CHALLENGER, str(version))
    former = alias_version(client, model_name, CHAMPION)
    if former is not None and former.version != str(version):
        client.set_registered_model_alias(model_name, PREVIOUS, former.version)
    client.set_registered_model_alias(model_name, CHAMPION, str(version))
    return None if former is None else former.version


def rollback(client: MlflowClient, model_name: str) -> str:
    """Point ``champion`` back at ``previous_champion``; returns the restored version."""
    previous = alias_version(client, model_name, PREVIOUS)
    if previous is None:
        raise LookupError(f"{model_name} has no previous champion to roll back to")
    current = alias_version(client, model_name, CHAMPION)
    client.set_registered_model_alias(model_name, CHAMPION, previous.version)
    if current is not None:
        client.set_registered_model_alias(model_name, PREVIOUS, current.version)
    return previous.version


def load_recommender(model_uri: str) -> Recommender:
    """Load a registered recommender, e.g. ``models:/recsys@champion`` or ``models:/recsys/3``.

    Downloads the model's files and reads the bundle its ``MLmodel`` declares, so versions
    registered by earlier layouts of the code load too.
    """
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    flavor = Model.load(str(local / MLMODEL)).flavors.get("python_function", {})
    bundle = flavor.get("artifacts", {}).get("bundle", {}).get("path")
    if bundle is None:
        raise TypeError(f"{model_uri} is not a recommender model (no bundle artifact)")
    return Recommender.load(local / bundle)

"""The MLflow record of a training run: parameters, lineage, metrics and evaluation artifacts.

Every model the platform registers is logged into such a run, so a registered version leads
back to its data window, FeatureService, training configuration and code version.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run

from recsys.evaluation.holdout import EvaluationReport
from recsys.platform.settings import PROJECT_ROOT


def code_version() -> str:
    """The git commit of the project, or ``unknown`` outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, cwd=PROJECT_ROOT)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def ensure_experiment(client: MlflowClient, name: str, artifact_dir: Path) -> str:
    """The id of experiment ``name``, created on first use with artifacts under
    ``artifact_dir``."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifact_dir.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=artifact_dir.resolve().as_uri())


@dataclass(frozen=True)
class EvaluationRecord:
    """Where an evaluation was logged and the figures the promotion gate reads."""

    run_id: str
    metrics: dict[str, float]
    k: int
    champion_version: str | None


@dataclass(frozen=True)
class Lineage:
    """Where a model comes from: the data window, the features and the code."""

    feature_service: str
    data_window: Mapping[str, str]
    code_version: str
    orchestrator_run_id: str
    champion_version: str | None

    def tags(self) -> dict[str, str]:
        return {
            "feature_service": self.feature_service,
            "code_version": self.code_version,
            "dagster_run_id": self.orchestrator_run_id,
            "champion_version": self.champion_version or "none",
        }


def log_training_run(
    experiment_id: str,
    run_name: str,
    lineage: Lineage,
    config: Mapping[str, object],
    params: Mapping[str, object],
    report: EvaluationReport,
    training_stats: Mapping[str, float],
    feature_importance: Mapping[str, float],
    gate_figures: Mapping[str, float] | None = None,
) -> str:
    """Log one training run (parameters, lineage tags, holdout metrics, the evaluation table
    and plot, the training configuration to retrain the recipe from); returns its run id."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(dict(params))
        mlflow.log_params({f"window.{k}": v for k, v in lineage.data_window.items()})
        mlflow.set_tags(lineage.tags())
        mlflow.log_metrics(report.metrics() | dict(gate_figures or {})
                           | {f"training.{k}": v for k, v in training_stats.items()})
        mlflow.log_dict(dict(config), "training_config.json")
        mlflow.log_dict(dict(feature_importance), "feature_importance.json")
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "evaluation.csv"
            report.table.to_csv(table, index=False)
            mlflow.log_artifact(str(table))
            mlflow.log_artifact(str(report.plot(Path(tmp) / "ndcg_at_k.png")))
    return run.info.run_id


def training_config_of(run_id: str) -> dict[str, object]:
    """The training configuration a run logged (to retrain its recipe on another window)."""
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/training_config.json")


def logged_window(run: Run) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The data window a training run logged (``window.start`` / ``window.end``), if any."""
    params = run.data.params
    if "window.start" not in params or "window.end" not in params:
        return None
    return pd.Timestamp(params["window.start"]), pd.Timestamp(params["window.end"])

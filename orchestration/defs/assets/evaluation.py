"""Evaluation asset: challenger vs popularity, ALS alone and the champion's recipe, in MLflow."""


import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import mlflow

from orchestration.defs.assets.training import RankerArtifact, TrainingData
from orchestration.defs.resources import FeastResource, MLflowResource
from recsys.evaluation.holdout import evaluate
from recsys.models.recommender import Recommender
from recsys.models.registry import CHAMPION, alias_version
from training.train import TrainingConfig, fit_candidates, manifest, train_pipeline


@dataclass(frozen=True)
class Evaluation:
    """Where the evaluation was logged and the figures the promotion gate reads."""

    run_id: str
    metrics: dict[str, float]
    k: int
    champion_version: str | None


@dg.asset(group_name="evaluation", kinds={"mlflow"})
def model_evaluation(
    context: dg.AssetExecutionContext,
    training_data: TrainingData,
    ranker_model: RankerArtifact,
    feast: FeastResource,
    tracking: MLflowResource,
) -> Evaluation:
    """Holdout metrics of the challenger pipeline and its baselines, logged to an MLflow run.

    The current champion is compared on the same holdout and protocol by retraining its
    recorded recipe on this window: its stored model has seen newer data than the holdout
    start, so scoring it directly would leak the holdout into the comparison.
    """
    data, store = training_data, feast.store()
    config = ranker_model.config
    challenger = Recommender(
        fit_candidates(data.interactions, config.candidates, data.windows.holdout_start),
        ranker_model.ranker, data.catalog, manifest(config, data.windows),
    )
    models = {"ranker": challenger}
    client = tracking.client()
    champion = alias_version(client, tracking.model_name, CHAMPION)
    if champion is not None:
        recipe = mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/training_config.json")
        models["champion"], _ = train_pipeline(
            data.interactions, data.catalog, store, TrainingConfig.from_dict(recipe), data.windows
        )
    report = evaluate(models, data.interactions, data.windows, store,
                      service=config.feature_service)
    metrics = report.metrics()
    with mlflow.start_run(experiment_id=tracking.experiment_id(),
                          run_name=f"train-{context.run.run_id[:8]}") as run:
        mlflow.log_params(config.as_params())
        mlflow.log_params({f"window.{k}": v for k, v in data.windows.as_dict().items()})
        mlflow.set_tags({
            "feature_service": config.feature_service,
            "dagster_run_id": context.run.run_id,
            "code_version": _code_version(),
            "champion_version": champion.version if champion else "none",
        })
        mlflow.log_metrics(metrics | {f"training.{k}": v for k, v in ranker_model.stats.items()})
        mlflow.log_dict(config.to_dict(), "training_config.json")
        mlflow.log_dict(ranker_model.ranker.feature_importance(), "feature_importance.json")
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "evaluation.csv"
            report.table.to_csv(table, index=False)
            mlflow.log_artifact(str(table))
            mlflow.log_artifact(str(report.plot(Path(tmp) / "ndcg_at_k.png")))
    context.add_output_metadata({
        "mlflow_run_id": run.info.run_id,
        "users": report.n_users,
        "comparison": dg.MetadataValue.md(
            report.table[report.table["k"] == report.k].to_markdown(index=False)
        ),
        **{name: dg.MetadataValue.float(value) for name, value in metrics.items()
           if name.endswith(f"ndcg_at_{report.k}")},
    })
    return Evaluation(run.info.run_id, metrics, report.k,
                      champion.version if champion else None)


def _code_version() -> str:
    """The git commit of the project, or ``unknown`` outside a checkout."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).parent)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"



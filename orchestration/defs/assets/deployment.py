"""Deployment assets: registered challenger → champion alias (gated) → BentoML model."""


from dataclasses import dataclass

import dagster as dg

from orchestration.defs.assets.evaluation import Evaluation
from orchestration.defs.assets.training import RankerArtifact, TrainingData
from orchestration.defs.resources import MLflowResource, PlatformStorage
from recsys.models.recommender import Recommender
from recsys.models.registry import CHALLENGER, log_recommender, promote
from recsys.platform.settings import use_bentoml_home
from training.train import fit_candidates, manifest


@dataclass(frozen=True)
class ModelRelease:
    """A registered model version and the evaluation behind it."""

    name: str
    version: str
    run_id: str
    evaluation: Evaluation


@dg.asset(group_name="deployment", kinds={"mlflow"})
def registered_model(
    context: dg.AssetExecutionContext,
    training_data: TrainingData,
    ranker_model: RankerArtifact,
    model_evaluation: Evaluation,
    tracking: MLflowResource,
) -> ModelRelease:
    """The serving model (candidates refitted on all data, the evaluated ranker), registered
    in MLflow under the ``challenger`` alias, in the evaluation's run."""
    data, config = training_data, ranker_model.config
    serving = Recommender(
        fit_candidates(data.interactions, config.candidates), ranker_model.ranker,
        data.catalog, manifest(config, data.windows),
    )
    client = tracking.client()
    version = log_recommender(serving, tracking.model_name, model_evaluation.run_id)
    client.set_registered_model_alias(tracking.model_name, CHALLENGER, version.version)
    for key, value in {
        "feature_service": config.feature_service,
        "data_window_start": data.windows.start.isoformat(),
        "data_window_end": data.windows.end.isoformat(),
        f"ndcg_at_{model_evaluation.k}": str(model_evaluation.metrics.get(
            f"ranker.ndcg_at_{model_evaluation.k}")),
    }.items():
        client.set_model_version_tag(tracking.model_name, version.version, key, value)
    context.add_output_metadata({"model": tracking.model_name, "version": version.version,
                                 "mlflow_run_id": model_evaluation.run_id})
    return ModelRelease(tracking.model_name, version.version, model_evaluation.run_id,
                        model_evaluation)


@dg.asset(group_name="deployment", kinds={"mlflow"})
def champion_model(
    context: dg.AssetExecutionContext, registered_model: ModelRelease, tracking: MLflowResource
) -> ModelRelease:
    """The ``champion`` alias moved to the challenger once the promotion gate passed."""
    former = promote(tracking.client(), registered_model.name, registered_model.version)
    context.add_output_metadata({"champion": registered_model.version,
                                 "previous_champion": former or "none"})
    return registered_model


@dg.asset(group_name="deployment", kinds={"bentoml"})
def bento_model(
    champion_model: ModelRelease, tracking: MLflowResource, storage: PlatformStorage
) -> dg.MaterializeResult:
    """The champion imported into BentoML's model store, where the service loads it."""
    use_bentoml_home(storage.settings)
    import bentoml

    tracking.client()  # sets the tracking URI the import reads from
    model = bentoml.mlflow.import_model(
        champion_model.name,
        f"models:/{champion_model.name}/{champion_model.version}",
        labels={"mlflow_version": champion_model.version, "stage": "champion"},
        metadata={"mlflow_run_id": champion_model.run_id,
                  **champion_model.evaluation.metrics},
    )
    return dg.MaterializeResult(metadata={"bento_model": str(model.tag)})

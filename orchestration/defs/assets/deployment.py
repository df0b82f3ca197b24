"""Deployment assets: serving candidates → registered challenger → champion alias (gated) →
the champion's candidate lists in the online store, and the BentoML model."""

import dagster as dg

from orchestration.defs.resources import FeastResource, MLflowResource, PlatformStorage
from recsys.evaluation.tracking import EvaluationRecord
from recsys.models.candidate_lists import store_lists
from recsys.models.registry import ModelRelease, promote, register_version
from recsys.models.union import UnionCandidates
from recsys.platform.settings import use_bentoml_home
from training import train
from training.train import TrainedRanker, TrainingData


@dg.asset(group_name="deployment", kinds={"implicit"})
def serving_candidates(training_data: TrainingData) -> UnionCandidates:
    """The first stage refitted on every event, holdout included: what the service retrieves
    from."""
    return train.serving_candidates(training_data)


@dg.asset(group_name="deployment", kinds={"mlflow"})
def registered_model(
    context: dg.AssetExecutionContext,
    training_data: TrainingData,
    serving_candidates: UnionCandidates,
    ranker_model: TrainedRanker,
    model_evaluation: EvaluationRecord,
    tracking: MLflowResource,
) -> ModelRelease:
    """The serving model (the evaluated ranker over the serving candidates), registered in
    MLflow as a new version in the evaluation's run; no alias moves before the gate."""
    tracking.client()  # sets the tracking URI
    model = train.assemble(training_data, serving_candidates, ranker_model.ranker)
    release = register_version(model, tracking.model_name, model_evaluation.run_id,
                                  model_evaluation.metrics, model_evaluation.k)
    context.add_output_metadata({"model": release.name, "version": release.version,
                                 "mlflow_run_id": release.run_id})
    return release


@dg.asset(group_name="deployment", kinds={"mlflow"})
def champion_model(
    context: dg.AssetExecutionContext, registered_model: ModelRelease, tracking: MLflowResource
) -> ModelRelease:
    """The ``challenger`` and ``champion`` aliases moved to the version once the promotion
    gate passed; the service follows ``champion``."""
    former = promote(tracking.client(), registered_model.name, registered_model.version)
    context.add_output_metadata({"champion": registered_model.version,
                                 "previous_champion": former or "none"})
    return registered_model


@dg.asset(group_name="deployment", kinds={"feast", "redis"})
def candidate_lists(champion_model: ModelRelease, training_data: TrainingData,
                    serving_candidates: UnionCandidates,
                    feast: FeastResource) -> dg.MaterializeResult:
    """Every known user's candidates from the champion's generators, computed in batch and
    written with the user's online features (stamped with the champion's version: the
    service retrieves online for any other model)."""
    users = serving_candidates.generators[0].interactions.user_ids
    catalog = training_data.catalog["item_id"].astype(str).tolist()
    stored = store_lists(feast.store(), serving_candidates, catalog, users.tolist(),
                         champion_model.version)
    return dg.MaterializeResult(metadata={"users": stored,
                                          "model_version": champion_model.version})


@dg.asset(group_name="deployment", kinds={"bentoml"})
def bento_model(
    champion_model: ModelRelease, tracking: MLflowResource, storage: PlatformStorage
) -> dg.MaterializeResult:
    """The champion imported into BentoML's model store, to package it as a Bento (the
    running service loads the champion from MLflow itself)."""
    use_bentoml_home(storage.settings)
    import bentoml

    tracking.client()  # sets the tracking URI the import reads from
    model = bentoml.mlflow.import_model(
        champion_model.name,
        f"models:/{champion_model.name}/{champion_model.version}",
        labels={"mlflow_version": champion_model.version, "stage": "champion"},
        metadata={"mlflow_run_id": champion_model.run_id, **champion_model.metrics},
    )
    return dg.MaterializeResult(metadata={"bento_model": str(model.tag)})

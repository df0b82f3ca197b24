"""Evaluation assets: the challenger and the champion's recipe on the same holdout, in MLflow."""

import dagster as dg

from orchestration.defs.resources import FeastResource, MLflowResource
from recsys.evaluation.gate import window_figures
from recsys.evaluation.holdout import evaluate
from recsys.evaluation.tracking import (
    EvaluationRecord,
    Lineage,
    code_version,
    log_training_run,
    logged_window,
    training_config_of,
)
from recsys.models.recommender import Recommender
from recsys.models.registry import CHAMPION, alias_version
from recsys.models.union import UnionCandidates
from training import train
from training.train import TrainedRanker, TrainingConfig, TrainingData, ranker_params


@dg.asset(group_name="evaluation", kinds={"implicit"})
def holdout_candidates(training_data: TrainingData) -> UnionCandidates:
    """The first stage refitted on everything before the holdout: the challenger's first
    stage as evaluated (the ranker's own lists came from the base window alone)."""
    return train.holdout_candidates(training_data)


@dg.asset(group_name="evaluation", kinds={"mlflow", "lightgbm"})
def champion_recipe_model(
    context: dg.AssetExecutionContext, training_data: TrainingData, feast: FeastResource,
    tracking: MLflowResource,
) -> Recommender | None:
    """The current champion's recipe (its logged training configuration) retrained on this
    window, or None before the first champion.

    Its stored model has seen newer data than this holdout's start, so scoring it directly
    would leak the holdout into the comparison.
    """
    champion = alias_version(tracking.client(), tracking.model_name, CHAMPION)
    if champion is None:
        context.add_output_metadata({"champion": "none"})
        return None
    recipe = TrainingConfig.from_dict(training_config_of(champion.run_id))
    data = TrainingData(training_data.interactions, training_data.catalog,
                        training_data.windows, recipe)
    model, _ = train.train_pipeline(data, feast.store())
    context.add_output_metadata({"champion": champion.version})
    return model


@dg.asset(group_name="evaluation", kinds={"mlflow"})
def model_evaluation(
    context: dg.AssetExecutionContext,
    training_data: TrainingData,
    holdout_candidates: UnionCandidates,
    ranker_model: TrainedRanker,
    champion_recipe_model: Recommender | None,
    feast: FeastResource,
    tracking: MLflowResource,
) -> EvaluationRecord:
    """Holdout metrics of the challenger, its baselines and the champion's recipe, logged to
    an MLflow run with the training configuration and lineage."""
    data, config = training_data, training_data.config
    models = {"ranker": train.assemble(data, holdout_candidates, ranker_model.ranker)}
    if champion_recipe_model is not None:
        models["champion"] = champion_recipe_model
    report = evaluate(models, data.interactions, data.windows, feast.store(),
                      service=config.feature_service, max_users=config.max_eval_users,
                      seed=config.seed)
    client = tracking.client()
    champion = alias_version(client, tracking.model_name, CHAMPION)
    lineage = Lineage(
        feature_service=config.feature_service, data_window=data.windows.as_dict(),
        code_version=code_version(), orchestrator_run_id=context.run.run_id,
        champion_version=champion.version if champion else None,
    )
    figures = window_figures(
        data.interactions, data.windows.holdout_start,
        None if champion is None else logged_window(client.get_run(champion.run_id)))
    run_id = log_training_run(
        tracking.experiment_id(), f"train-{context.run.run_id[:8]}", lineage,
        config.to_dict(), config.as_params() | ranker_params(ranker_model.ranker), report,
        ranker_model.stats,
        ranker_model.ranker.feature_importance(), figures,
    )
    metrics = report.metrics() | figures
    context.add_output_metadata({
        "mlflow_run_id": run_id,
        "users": report.n_users,
        "comparison": dg.MetadataValue.md(
            report.table[report.table["k"] == report.k].to_markdown(index=False)
        ),
        # The plot MLflow holds, inline: the asset page opens it under "[Show Markdown]".
        "ndcg_at_k_plot": dg.MetadataValue.md(report.plot_markdown()),
        **{name: dg.MetadataValue.float(value) for name, value in metrics.items()
           if name.endswith(f"ndcg_at_{report.k}")},
    })
    return EvaluationRecord(run_id, metrics, report.k, lineage.champion_version)


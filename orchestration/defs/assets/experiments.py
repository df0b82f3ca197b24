"""Experiments in Dagster: creation through config, and the looks that decide them.

``experiment_decisions`` analyses every running experiment of the durable store, takes the
decision the rules give (halt on SRM, roll back, promote at the planned size, conclude,
continue) and acts on it: the store (the service follows within its refresh interval) and
MLflow aliases. Its metadata shows each experiment's table and lift plot, also logged to
MLflow. ``experiment_sensor`` runs it every few minutes while experiments run.
"""

import json

import dagster as dg

from orchestration.defs.resources import MLflowResource, PlatformStorage
from recsys.experiments.decisions import plan
from recsys.experiments.looks import look, plot_markdown, table_markdown
from recsys.experiments.model import ExperimentSpec
from recsys.experiments.store import ExperimentStore


class NewExperimentConfig(dg.Config):
    """An experiment to create, as the JSON of ``ExperimentSpec`` (the body of
    ``POST /api/v1/recs/experiments``)."""

    spec_json: str


class LookConfig(dg.Config):
    apply: bool = True  # False: analyse and report, decide nothing


@dg.op
def create_experiment(context: dg.OpExecutionContext, config: NewExperimentConfig,
                      storage: PlatformStorage) -> str:
    """Validate the spec, plan its users per variant and store it running."""
    spec = ExperimentSpec.model_validate(json.loads(config.spec_json))
    store = ExperimentStore(storage.settings.experiments_db)
    experiment = store.create(spec, planned_users_per_variant=plan(spec),
                              reason="created through Dagster")
    context.log.info(f"experiment {experiment.experiment_id} running, "
                     f"{experiment.planned_users_per_variant} users per variant planned")
    return experiment.experiment_id


@dg.job(description="Create an experiment from config (an ExperimentSpec as JSON).")
def create_experiment_job() -> None:
    create_experiment()


@dg.asset(group_name="experiments", kinds={"mlflow"})
def experiment_decisions(context: dg.AssetExecutionContext, config: LookConfig,
                         storage: PlatformStorage, tracking: MLflowResource) -> None:
    """One look at each running experiment: results per variant and day, the decision taken
    and carried out, the lift plot (metadata and MLflow)."""
    settings = storage.settings.model_copy(update={"model_name": tracking.model_name})
    store = ExperimentStore(settings.experiments_db)
    client = tracking.client()
    tracking.experiment_id()  # the MLflow tracking store is the platform's
    metadata: dict[str, object] = {}
    for experiment in store.list("running"):
        seen = look(store, experiment, settings, client, apply=config.apply)
        key = experiment.experiment_id
        metric = experiment.primary_metric
        metadata[f"{key}_decision"] = f"{seen.decision.action}: {seen.decision.reason}"
        metadata[f"{key}_results"] = dg.MetadataValue.md(
            table_markdown(seen.analysis) + "\n\n" + plot_markdown(seen.analysis, metric))
        metadata[f"{key}_mlflow_run"] = seen.mlflow_run_id or ""
    metadata["running_experiments"] = len(store.list("running"))
    context.add_output_metadata(metadata)


experiment_job = dg.define_asset_job(
    "experiment_job", selection=dg.AssetSelection.assets(experiment_decisions),
    description="Look at every running experiment and act on the decision.")


@dg.sensor(job=experiment_job, minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.RUNNING)
def experiment_sensor(context: dg.SensorEvaluationContext,
                      storage: PlatformStorage) -> dg.SensorResult:
    """A look every five minutes while an experiment runs. The sequential test's looks are
    the UTC days (cumulative, today's so far the last) and its alpha is spent by the share
    of the planned users, so a run within a day re-reads today's look on more users; the
    guardrails are checked at every run, so a broken variant stops within minutes."""
    running = ExperimentStore(storage.settings.experiments_db).list("running")
    if not running:
        return dg.SensorResult(skip_reason="no running experiment")
    return dg.SensorResult(run_requests=[dg.RunRequest()])

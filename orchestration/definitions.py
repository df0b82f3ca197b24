"""The Dagster code location of the platform (loaded by ``workspace.yaml``)."""

import dagster as dg

from orchestration.defs import asset_checks, schedules, sensors
from orchestration.defs.assets import (
    deployment,
    evaluation,
    experiments,
    features,
    ingestion,
    training,
)
from orchestration.defs.jobs import ALL_JOBS
from orchestration.defs.resources import build_resources
from orchestration.instance.event_storage import batch_asset_events

batch_asset_events()  # run workers launched by `dagster dev` write backfill events in batches

#: Runs launched by the webserver, the daemon or ``/train`` execute each step in a process of
#: its own. Spawned, every step process imports Dagster, Feast, MLflow, LightGBM and this code
#: location again: 15-50 s a step on 2 busy cores against 1-2 s of work, so a retrain took 16
#: minutes. Forked from a server that imported this module once, a step starts in well under a
#: second and still runs isolated (a crashed step cannot take the run down).
STEP_EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["orchestration.definitions"]}}},
    name="forkserver_multiprocess",
)

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [ingestion, features, training, evaluation, deployment, experiments]),
    asset_checks=dg.load_asset_checks_from_modules([asset_checks]),
    jobs=[*ALL_JOBS, experiments.experiment_job, experiments.create_experiment_job],
    schedules=[schedules.daily_retrain],
    sensors=[sensors.inbox_sensor, sensors.event_log_sensor, asset_checks.freshness_sensor,
             experiments.experiment_sensor],
    resources=build_resources(),
    executor=STEP_EXECUTOR,
)

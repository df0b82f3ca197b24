"""The Dagster code location of the platform (loaded by ``workspace.yaml``)."""

import dagster as dg

from orchestration.defs import asset_checks, schedules, sensors
from orchestration.defs.assets import deployment, evaluation, features, ingestion, training
from orchestration.defs.jobs import ALL_JOBS
from orchestration.defs.resources import build_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingestion, features, training, evaluation, deployment]),
    asset_checks=dg.load_asset_checks_from_modules([asset_checks]),
    jobs=ALL_JOBS,
    schedules=[schedules.daily_retrain],
    sensors=[sensors.inbox_sensor, sensors.event_log_sensor, asset_checks.freshness_sensor],
    resources=build_resources(),
)

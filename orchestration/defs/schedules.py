"""Schedules: daily retraining after the day's events are in."""


import dagster as dg

from orchestration.defs.jobs import retrain_job

daily_retrain = dg.ScheduleDefinition(
    name="daily_retrain",
    job=retrain_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain, evaluate and (if the gate passes) promote every night at 02:30 UTC.",
)

"""Sensors: new event files in the inbox, and new days in the event log."""


import json
from pathlib import Path

import dagster as dg

from orchestration.defs.jobs import import_job, ingestion_job
from orchestration.defs.partitions import daily_partitions
from orchestration.defs.resources import PlatformStorage
from recsys.events.importers import EVENT_FILE_SUFFIXES


@dg.sensor(job=import_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)
def inbox_sensor(context: dg.SensorEvaluationContext, storage: PlatformStorage) -> dg.SensorResult:
    """Import each new or changed events file dropped into ``<data_dir>/events/inbox``."""
    inbox = storage.settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    seen: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    requests = []
    for path in sorted(inbox.iterdir()):
        if path.suffix not in EVENT_FILE_SUFFIXES or path.name.startswith("."):
            continue
        mtime = path.stat().st_mtime
        if seen.get(path.name) == mtime:
            continue
        seen[path.name] = mtime
        requests.append(dg.RunRequest(
            run_key=f"{path.name}:{mtime}",
            run_config={"ops": {"event_source": {"config": {
                "kind": "events", "path": str(Path(path).resolve())
            }}}},
        ))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen))


@dg.sensor(job=ingestion_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING)
def event_log_sensor(
    context: dg.SensorEvaluationContext, storage: PlatformStorage
) -> dg.SensorResult:
    """Materialize and validate every day whose event log segments changed."""
    cursor = float(context.cursor) if context.cursor else 0.0
    days, new_cursor = storage.event_log().changed_days_since(cursor)
    valid_keys = set(daily_partitions.get_partition_keys())
    requests = [
        dg.RunRequest(run_key=f"{day}:{new_cursor}", partition_key=str(day))
        for day in days if str(day) in valid_keys
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(new_cursor))

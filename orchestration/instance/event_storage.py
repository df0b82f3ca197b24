"""Dagster's SQLite event log, writing a run's asset events in batches.

A single-run backfill over years of daily partitions records one materialization per
partition and asset: thousands of events, which Dagster's SQLite storage commits one at a
time (three commits each). With ``DAGSTER_EVENT_BATCH_SIZE`` set, Dagster hands a step's
asset events over in batches; this storage writes such a batch in one transaction per
database, with the same rows as one by one. Any other batch is stored event by event.
"""

import os
from pathlib import Path

from dagster import Field, StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result

#: Events per batch (Dagster's ``DAGSTER_EVENT_BATCH_SIZE``) unless the environment says.
EVENT_BATCH_SIZE = "1000"


def batch_asset_events() -> None:
    """Environment defaults for long single-run backfills: asset events written in batches,
    and one "materialization planned" event per asset instead of one per partition (a failed
    run then leaves its partitions unmarked instead of marked failed)."""
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")


def _is_asset_event(event) -> bool:
    dagster_event = event.dagster_event
    return (event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS
            and dagster_event.asset_key is not None)


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` whose ``store_event_batch`` commits a run's asset events
    together. ``base_dir`` defaults to ``$DAGSTER_HOME/history/runs``, Dagster's own place."""

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        base_dir = config_value.get("base_dir")
        if not base_dir:
            if not os.environ.get("DAGSTER_HOME"):
                raise ValueError("BatchedSqliteEventLogStorage needs DAGSTER_HOME or base_dir")
            base_dir = str(Path(os.environ["DAGSTER_HOME"]) / "history" / "runs")
        return cls(base_dir=base_dir, inst_data=inst_data)

    def store_event_batch(self, events) -> None:
        if (not events or len({event.run_id for event in events}) > 1
                or not all(_is_asset_event(event) for event in events)):
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, ids)
            for event, event_id in zip(events, ids, strict=True):
                self._store_asset_event(conn, event, event_id)

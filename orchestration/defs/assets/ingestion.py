"""Ingestion assets: imported events → raw_events → validated_events (daily partitions)."""


import dagster as dg
import pandas as pd

from orchestration.defs.partitions import daily_partitions, partition_days
from orchestration.defs.resources import PlatformStorage
from recsys.events.schema import EVENT_ARROW_SCHEMA, EVENT_COLUMNS
from recsys.events.sources import Source, SourceKind, load_source
from recsys.events.validation import validate_events

_SOURCE = Source()


class SourceConfig(dg.Config):
    """Where the events come from: the seeded synthetic world, MovieLens or an events file
    (defaults: :class:`recsys.events.sources.Source`)."""

    kind: SourceKind = _SOURCE.kind
    path: str | None = _SOURCE.path
    n_users: int = _SOURCE.n_users
    n_items: int = _SOURCE.n_items
    days: int = _SOURCE.days
    seed: int = _SOURCE.seed


@dg.asset(group_name="ingestion", kinds={"parquet"})
def event_source(config: SourceConfig, storage: PlatformStorage) -> dg.MaterializeResult:
    """Events, catalog and users imported into the event log and the warehouse.

    Re-importing the same source rewrites the same import segment, so it is idempotent.
    """
    source = Source(**config.model_dump())
    dataset = load_source(source)
    events, items, users, quarantined = (
        dataset.events, dataset.items, dataset.users, dataset.quarantined
    )
    storage.event_log().append(events, segment=f"import-{source.label}")
    catalog_dir = storage.table_dir("catalog")
    items.to_parquet(catalog_dir / "items.parquet", index=False)
    if users is not None:
        users.to_parquet(catalog_dir / "users.parquet", index=False)
    if len(quarantined):
        quarantined.to_parquet(storage.quarantine_dir() / f"import-{source.label}.parquet",
                               index=False)
    return dg.MaterializeResult(metadata={
        "events": len(events),
        "items": len(items),
        "users": 0 if users is None else len(users),
        "quarantined_at_import": len(quarantined),
        "first_event": str(events["timestamp"].min()),
        "last_event": str(events["timestamp"].max()),
    })


def _partition_file(storage: PlatformStorage, table: str, day: object) -> object:
    folder = storage.table_dir(table) / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "part.parquet"


@dg.asset(
    group_name="ingestion",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[event_source],
    kinds={"parquet"},
)
def raw_events(context: dg.AssetExecutionContext, storage: PlatformStorage) -> dg.MaterializeResult:
    """Each day's events as the event log holds them when the partition is materialized."""
    log = storage.event_log()
    total = 0
    for day in partition_days(context):
        frame = log.read_day(day)
        frame[EVENT_COLUMNS].to_parquet(_partition_file(storage, "raw_events", day),
                                        index=False, schema=EVENT_ARROW_SCHEMA)
        total += len(frame)
    return dg.MaterializeResult(metadata={"rows": total})


@dg.asset(
    group_name="ingestion",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_events],
    kinds={"parquet"},
)
def validated_events(
    context: dg.AssetExecutionContext, storage: PlatformStorage
) -> dg.MaterializeResult:
    """Raw events that pass the event schema; the others quarantined with their reason.

    An ``event_id`` is accepted once across all days: a retry landing on another day is
    quarantined as a duplicate of the partition that holds it already.
    """
    valid_rows = quarantined_rows = 0
    reasons: dict[str, int] = {}
    days = partition_days(context)
    known = storage.validated_event_ids(exclude_days=days)
    for day in days:
        raw = pd.read_parquet(_partition_file(storage, "raw_events", day))
        result = validate_events(raw, known)
        result.valid.to_parquet(_partition_file(storage, "validated_events", day), index=False,
                                schema=EVENT_ARROW_SCHEMA)
        quarantine_file = storage.quarantine_dir() / f"date={day}.parquet"
        if len(result.quarantined):
            result.quarantined.to_parquet(quarantine_file, index=False)
        else:
            quarantine_file.unlink(missing_ok=True)
        valid_rows += len(result.valid)
        quarantined_rows += len(result.quarantined)
        counts = result.quarantined.get("reason", pd.Series(dtype=str)).value_counts()
        for reason, n in counts.items():
            key = str(reason).split(":")[0]
            reasons[key] = reasons.get(key, 0) + int(n)
    return dg.MaterializeResult(metadata={
        "valid_rows": valid_rows,
        "quarantined_rows": quarantined_rows,
        "quarantine_reasons": dg.MetadataValue.json(reasons),
    })

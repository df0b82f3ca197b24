"""Ingestion assets: imported events → raw_events → validated_events (daily partitions)."""


from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from orchestration.defs.partitions import daily_partitions, partition_days
from orchestration.defs.resources import PlatformStorage
from recsys.events.schema import EVENT_ARROW_SCHEMA, EVENT_COLUMNS, EVENT_DTYPES, empty_frame
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
    sessions_per_user: float = _SOURCE.sessions_per_user


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


def _day_file(folder: Path, day: object) -> Path:
    return folder / f"date={day}" / "part.parquet"


def _write_days(folder: Path, days: list, frame: pd.DataFrame, day_of: pd.Series) -> None:
    """Each day's rows of ``frame`` (``day_of``: their ``YYYY-MM-DD``) as that day's partition
    file, converted to Arrow once; a day without rows has no file (a stale one is removed),
    so a long, sparse history costs files only for the days that hold events."""
    order = np.argsort(day_of.to_numpy(dtype=str), kind="stable")
    keys = day_of.to_numpy(dtype=str)[order]
    table = pa.Table.from_pandas(frame[EVENT_COLUMNS].iloc[order], schema=EVENT_ARROW_SCHEMA,
                                 preserve_index=False)
    for day in days:
        path = _day_file(folder, day)
        start, end = np.searchsorted(keys, str(day), "left"), np.searchsorted(keys, str(day),
                                                                               "right")
        if start == end:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.slice(start, end - start), path)


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
    days = partition_days(context)
    logged = set(log.days())
    frames = [log.read_day(day).assign(_day=str(day)) for day in days if day in logged]
    raw = pd.concat(frames, ignore_index=True) if frames else empty_frame(EVENT_DTYPES).assign(
        _day=pd.Series(dtype=str))
    _write_days(storage.table_dir("raw_events"), days, raw, raw["_day"])
    return dg.MaterializeResult(metadata={"rows": len(raw)})


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
    days = partition_days(context)
    raw_dir, valid_dir = storage.table_dir("raw_events"), storage.table_dir("validated_events")
    quarantine_dir = storage.quarantine_dir()
    known = storage.validated_event_ids(exclude_days=days)
    # The range's days validated in one pass (cheaper than one per day over years of them);
    # rows keep their partition's day, so each day's valid and quarantined rows land there.
    paths = [str(path) for day in days if (path := _day_file(raw_dir, day)).exists()]
    raw = pd.DataFrame(columns=[*EVENT_COLUMNS, "_day"])
    if paths:  # one Arrow dataset read, the day from each file's hive folder (date=...)
        dataset = ds.dataset(paths, format="parquet", partitioning="hive",
                             partition_base_dir=str(raw_dir))
        raw = dataset.to_table().to_pandas()
        raw["_day"] = raw.pop("date").astype(str)
    result = validate_events(raw.drop(columns="_day"), known)
    # A raw partition holds the events of its UTC day, which validation keeps in UTC.
    # (numpy's day strings: strftime took half a minute on 6M rows)
    day_of_valid = result.valid["timestamp"].array.asi8.view("datetime64[ns]")
    valid = result.valid.assign(
        _day=np.datetime_as_string(day_of_valid.astype("datetime64[D]"), unit="D"))
    quarantined = result.quarantined.assign(
        _day=raw.loc[result.quarantined.index, "_day"].to_numpy())
    quarantined_by_day = dict(tuple(quarantined.groupby("_day", sort=False)))
    _write_days(valid_dir, days, valid, valid["_day"])
    for day in days:
        quarantine_file = quarantine_dir / f"date={day}.parquet"
        rows = quarantined_by_day.get(str(day))
        if rows is not None:
            rows.drop(columns="_day").to_parquet(quarantine_file, index=False)
        else:
            quarantine_file.unlink(missing_ok=True)
    valid_rows, quarantined_rows = len(valid), len(quarantined)
    reasons: dict[str, int] = {}
    for reason, n in quarantined.get("reason", pd.Series(dtype=str)).value_counts().items():
        key = str(reason).split(":")[0]
        reasons[key] = reasons.get(key, 0) + int(n)
    return dg.MaterializeResult(metadata={
        "valid_rows": valid_rows,
        "quarantined_rows": quarantined_rows,
        "quarantine_reasons": dg.MetadataValue.json(reasons),
    })

"""Feature assets: offline feature tables → Feast registry → Redis online store."""


from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from orchestration.defs.assets.ingestion import validated_events
from orchestration.defs.resources import FeastResource, PlatformStorage
from recsys.events.schema import EVENT_DTYPES, empty_frame
from recsys.features.names import ITEM_STATS, USER_CANDIDATES
from recsys.features.store import apply_definitions, write_offline_table
from recsys.features.tables import build_item_table, build_user_tables

#: The last frame read, keyed by its files and their modification times: the steps of one
#: run read the same partitions, years of which are thousands of files.
_LAST_READ: dict[str, tuple[tuple, pd.DataFrame]] = {}


def validated_events_version(storage: PlatformStorage) -> tuple[Path, tuple]:
    """The validated events' folder and its version: its files and their modification times."""
    folder = storage.table_dir("validated_events")
    files = sorted(folder.glob("date=*/*.parquet"))  # every file the folder read includes
    return folder, tuple((str(path), path.stat().st_mtime_ns) for path in files)


def read_validated_events(storage: PlatformStorage) -> pd.DataFrame:
    """Every validated partition, as one frame ordered by time."""
    folder, key = validated_events_version(storage)
    files = bool(key)
    cached = _LAST_READ.get(str(folder))
    if cached is not None and cached[0] == key:
        return cached[1].copy()
    frame = pd.read_parquet(folder).drop(columns=["date"], errors="ignore") if files else \
        empty_frame(EVENT_DTYPES)
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    _LAST_READ[str(folder)] = (key, frame)
    return frame.copy()


def read_catalog(storage: PlatformStorage) -> pd.DataFrame:
    return pd.read_parquet(storage.table_dir("catalog") / "items.parquet")


@dg.asset(group_name="features", deps=[validated_events], kinds={"parquet"})
def training_window(storage: PlatformStorage) -> dg.MaterializeResult:
    """The validated events the features and models of this run are built from. Its blocking
    data checks stop every job that trains (``retrain_job`` included) before anything is
    rebuilt from a bad window."""
    events = read_validated_events(storage)
    return dg.MaterializeResult(metadata={
        "events": len(events), "users": int(events["user_id"].nunique()),
        "items": int(events["item_id"].nunique()),
        "first_event": str(events["timestamp"].min()), "last_event": str(events["timestamp"].max()),
    })


@dg.asset(group_name="features", deps=[training_window], kinds={"parquet", "feast"})
def user_features(storage: PlatformStorage, feast: FeastResource) -> dg.MaterializeResult:
    """User tables of the offline store: activity windows, category affinity, history."""
    events = read_validated_events(storage)
    tables = build_user_tables(events, read_catalog(storage))
    for name, frame in tables.items():
        write_offline_table(name, frame, repo_dir=feast.repo_dir)
    return dg.MaterializeResult(metadata={
        f"{name}_rows": len(frame) for name, frame in tables.items()
    } | {"users": int(events["user_id"].nunique())})


@dg.asset(group_name="features", deps=[training_window], kinds={"parquet", "feast"})
def item_features(storage: PlatformStorage, feast: FeastResource) -> dg.MaterializeResult:
    """Item table of the offline store: popularity windows, trend, price, stock, categories."""
    table = build_item_table(read_validated_events(storage), read_catalog(storage))
    write_offline_table(ITEM_STATS, table, repo_dir=feast.repo_dir)
    return dg.MaterializeResult(metadata={
        "rows": len(table), "items": int(table["item_id"].nunique())
    })


@dg.asset(group_name="features", deps=[user_features, item_features], kinds={"feast"})
def feature_registry(feast: FeastResource) -> dg.MaterializeResult:
    """The repo's entities, views and FeatureServices applied to the Feast registry."""
    names = apply_definitions(feast.store())
    return dg.MaterializeResult(metadata={"objects": dg.MetadataValue.json(names)})


@dg.asset(group_name="features", deps=[feature_registry], kinds={"feast", "redis"})
def online_features(feast: FeastResource) -> dg.MaterializeResult:
    """Latest feature values of every entity materialized into the Redis online store."""
    store = feast.store()
    end = datetime.now(tz=UTC)
    # user_candidates holds a model's output, written by the candidate_lists asset
    views = [view.name for view in store.list_feature_views()
             if view.online and view.name != USER_CANDIDATES]
    # From the epoch: the offline tables hold the whole history, Feast keeps the latest row.
    store.materialize(start_date=datetime(1970, 1, 2, tzinfo=UTC), end_date=end,
                      feature_views=views)
    return dg.MaterializeResult(metadata={
        "feature_views": dg.MetadataValue.json(views), "end": end.isoformat()
    })

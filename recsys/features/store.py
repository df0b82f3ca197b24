"""Access to the Feast feature store, configured from the platform settings.

``feature_repo/feature_store.yaml`` is the one configuration (the Feast CLI reads it as is);
this module loads it and applies the settings that vary by profile: the Redis address
(embedded Valkey or ``REDIS_URL``), the repo path under which offline tables live, and a SQL
registry for the production profile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from feast import Entity, FeatureService, FeatureStore, FeatureView, FileSource
from feast.data_source import DataSource
from feast.repo_config import RepoConfig

from feature_repo import definitions
from recsys.platform.redis_server import resolve_redis
from recsys.platform.settings import PROJECT_ROOT, Settings, get_settings

logger = logging.getLogger(__name__)

FEATURE_STORE_YAML = PROJECT_ROOT / "feature_repo" / "feature_store.yaml"

#: Offline tables the feature assets write: feature view name → its FileSource's path under
#: the repo (``data/<view>.parquet``), as ``feature_repo/definitions.py`` declares them.
OFFLINE_TABLES = {
    view.name: view.batch_source.path
    for view in vars(definitions).values()
    if isinstance(view, FeatureView) and isinstance(view.batch_source, FileSource)
}


def repo_config(settings: Settings | None = None) -> RepoConfig:
    """The Feast config of ``feature_store.yaml`` with this profile's Redis and registry."""
    settings = settings or get_settings()
    raw = yaml.safe_load(os.path.expandvars(FEATURE_STORE_YAML.read_text()))
    target = resolve_redis(settings)
    raw["online_store"]["connection_string"] = target.feast_connection_string
    raw["online_store"]["redis_type"] = target.feast_redis_type
    if settings.feast_registry_url:
        raw["registry"] = {
            "registry_type": "sql",
            "path": settings.feast_registry_url,
            "cache_ttl_seconds": 60,
            "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
        }
    config = RepoConfig(**raw)
    config.repo_path = settings.feature_repo_dir
    return config


def get_feature_store(settings: Settings | None = None) -> FeatureStore:
    """A FeatureStore over the platform's repo path, Redis and registry."""
    settings = settings or get_settings()
    settings.offline_store_dir.mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(settings.feature_repo_dir), config=repo_config(settings))


def feast_objects(repo_dir: Path | None = None) -> list[object]:
    """Every Feast object declared in ``feature_repo/definitions.py``, in declaration order.

    With ``repo_dir``, relative FileSource paths are made absolute under it: Feast's DuckDB
    offline store reads a relative path from the working directory, not the repo.
    """
    kinds = (Entity, DataSource, FeatureView, FeatureService)
    objects = [obj for obj in vars(definitions).values() if isinstance(obj, kinds)]
    if repo_dir is not None:
        for obj in objects:
            for source in (obj, getattr(obj, "batch_source", None)):
                if isinstance(source, FileSource) and not Path(source.path).is_absolute():
                    source.file_options.uri = str(Path(repo_dir).resolve() / source.path)
    return objects


def apply_definitions(store: FeatureStore) -> list[str]:
    """Register the repo's objects (what ``feast apply`` does); returns their names."""
    objects = feast_objects(store.repo_path)
    store.apply(objects)
    names = [getattr(obj, "name", "?") for obj in objects]
    logger.info("applied %d Feast objects", len(names))
    return names


def write_offline_table(name: str, frame: pd.DataFrame, repo_dir: Path | str) -> Path:
    """Atomically replace one offline feature table (a FileSource's Parquet file)."""
    return write_offline_parts(name, [frame], repo_dir)[0]


def write_offline_parts(name: str, parts: Iterable[pd.DataFrame],
                        repo_dir: Path | str) -> tuple[Path, int]:
    """:func:`write_offline_table` of the concatenation of ``parts`` (same columns), one row
    group each as they come, so the whole table is never in memory; the rows written. The
    table is replaced once the last part is written, and left as it was when none has rows."""
    path = Path(repo_dir) / OFFLINE_TABLES[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for frame in parts:
            if frame.empty and writer is not None:
                continue
            # Microseconds: DuckDB cannot cast nanosecond time zone stamps when Feast
            # materializes.
            table = pa.Table.from_pandas(frame.assign(event_timestamp=frame[
                "event_timestamp"].astype("datetime64[us, UTC]")), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.cast(writer.schema))
            rows += len(frame)
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        os.replace(tmp, path)
    return path, rows

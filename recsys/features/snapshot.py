"""Throw-away Feast repos over a chosen set of events, for offline evaluation.

An evaluation must compute its features from training events only, so it cannot read the
platform's offline tables (they hold every event). :class:`FeatureSnapshots` writes the
same tables (:mod:`recsys.features.tables`) from the events it is given into a fresh Feast repo
in a temporary directory, registers the repo's definitions there and hands back the
FeatureStore; the ranker then reads them through the FeatureService exactly as the
platform does. Nothing under the project's ``.data`` or ``feature_repo/data`` is touched.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import socket
import tempfile
from pathlib import Path
from types import TracebackType

import pandas as pd
from feast import FeatureStore, FileSource

from recsys.features.names import ITEM_STATS
from recsys.features.store import feast_objects, get_feature_store, write_offline_table
from recsys.features.tables import build_item_table, build_user_tables
from recsys.platform.redis_server import stop_embedded
from recsys.platform.settings import Settings

logger = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fingerprint(events: pd.DataFrame, items: pd.DataFrame) -> str:
    """A short digest of the events and catalog ids that features are computed from."""
    digest = hashlib.sha256()
    for frame in (events[["user_id", "item_id", "event_type", "value", "timestamp"]],
                  items[["item_id"]]):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _repo_objects(repo_dir: Path) -> list[object]:
    """Copies of the repo's Feast objects whose Parquet sources live under ``repo_dir``.

    Copies, because :func:`recsys.features.store.feast_objects` resolves the paths on the
    shared module-level objects once: a second repo in the same process would otherwise
    read the first one's tables.
    """
    objects = [copy.deepcopy(obj) for obj in feast_objects()]
    for obj in objects:
        for source in (obj, getattr(obj, "batch_source", None)):
            if isinstance(source, FileSource):
                name = Path(source.path).name
                source.file_options.uri = str(Path(repo_dir).resolve() / "data" / name)
    return objects


class FeatureSnapshots:
    """Temporary Feast repos, one per event set, removed on :meth:`close`.

    Feast needs an online store to build a FeatureStore, though historical retrieval only
    reads the offline (DuckDB over Parquet) store: ``REDIS_URL`` is used when set, otherwise
    an embedded Valkey on a free port is started for these repos and stopped on close.

    Parameters
    ----------
    root
        Directory to hold the repos; a new temporary directory (deleted on close) if None.
    """

    def __init__(self, root: Path | None = None):
        self._tmp = None if root is not None else tempfile.TemporaryDirectory(prefix="recsys-")
        self.root = Path(root) if root is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        # Explicit values: no SQL registry or data dir from the environment may be written to.
        self._base = Settings(
            data_dir=self.root / "data",
            feature_repo_dir=self.root / "unused",
            feast_registry_url=None,
            embedded_redis_port=_free_port(),
        )
        self._stores: dict[str, FeatureStore] = {}

    def settings(self, name: str) -> Settings:
        """Settings of the repo ``name`` (its offline tables live under ``<repo>/data``)."""
        return self._base.model_copy(update={"feature_repo_dir": self.root / name})

    def store(self, events: pd.DataFrame, items: pd.DataFrame) -> FeatureStore:
        """A FeatureStore whose offline tables are computed from ``events`` only.

        The same events and catalog give back the same store (a temporal protocol cuts
        every seed alike), so its tables are computed once.

        Parameters
        ----------
        events
            Validated events; every feature value derives from these and the catalog.
        items
            The catalog (categories, price, stock, creation time).
        """
        name = _fingerprint(events, items)
        if name in self._stores:
            return self._stores[name]
        settings = self.settings(name)
        tables = build_user_tables(events, items)
        tables[ITEM_STATS] = build_item_table(events, items)
        for table, frame in tables.items():
            write_offline_table(table, frame, settings.feature_repo_dir)
        store = get_feature_store(settings)
        store.apply(_repo_objects(settings.feature_repo_dir))
        logger.info("feature snapshot %s: %d events, %s", name, len(events),
                    {table: len(frame) for table, frame in tables.items()})
        self._stores[name] = store
        return store

    def close(self) -> None:
        """Stop the embedded Valkey if this object started one; delete the temporary root."""
        if self._base.redis_url is None:
            stop_embedded(self._base)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> FeatureSnapshots:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

"""The engine being served, and its hot reload.

At start the service loads the version the MLflow ``champion`` alias points at; a background
thread then follows that alias (the one load path) and the Feast materialization of the item
views: a new champion loads a new engine, a new
materialization re-reads the item table; either is swapped in with one reference
assignment, so a request in flight finishes on the engine it started with. Models that
A/B experiments name by another alias (:mod:`serving.experiments`) are loaded from MLflow
beside the champion and followed the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from recsys.features.item_table import ItemTable, item_views_materialized_at
from recsys.features.names import RANKER_SERVICE
from recsys.features.store import get_feature_store
from recsys.models.recommender import Recommender
from recsys.models.registry import CHAMPION, alias_version, load_recommender
from recsys.platform.settings import Settings
from serving.breaker import Breaker
from serving.config import ServingSettings
from serving.engine import Engine, Query
from serving.metrics import MODEL_REJECTED, MODEL_SWAPS, serving_version
from serving.online_store import fail_fast

logger = logging.getLogger(__name__)


class ModelHolder:
    """Holds the current :class:`Engine`; :meth:`check` reloads what changed."""

    def __init__(self, settings: Settings, serving: ServingSettings, breaker: Breaker,
                 extra_arms: Callable[[], set[str]] = set):
        self.settings, self.serving, self.breaker = settings, serving, breaker
        self.extra_arms = extra_arms  # aliases or versions the stored experiments name
        self.store = get_feature_store(settings)
        fail_fast(self.store, serving.redis_timeout_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.rejected: str | None = None  # the last champion version refused by the smoke test
        version = self._alias_version(CHAMPION)
        if version is None:
            raise RuntimeError(f"model {settings.model_name!r} has no {CHAMPION!r} version in "
                               f"MLflow at {settings.tracking_uri}: run the pipeline first")
        self.engine = self.build(self._load(version), version)
        serving_version(version)
        self.arms: dict[str, Engine] = {}
        for alias in self._arm_aliases():
            try:
                self._load_arm(alias)
            except Exception:  # the champion serves the arm until a poll loads it
                logger.exception("experiment arm %r not loaded", alias)

    def engine_for(self, alias: str) -> tuple[Engine, str]:
        """The engine serving ``alias`` and the alias it really is (the champion's when
        that alias is not loaded)."""
        engine = self.arms.get(alias)
        return (engine, alias) if engine is not None else (self.engine, CHAMPION)

    def _arm_aliases(self) -> list[str]:
        aliases = {a for arms in self.serving.experiments.values() for a in arms}
        return sorted((aliases | self.extra_arms()) - {CHAMPION})

    def _load_arm(self, alias: str) -> None:
        """Load (or reload on a new version) the model of ``alias``; keep serving on error."""
        version = self._alias_version(alias)
        if version is None:
            logger.warning("experiment arm %r has no model version; the champion serves it",
                           alias)
            return
        current = self.arms.get(alias)
        if current is not None and current.model_version == version:
            return
        self.arms[alias] = self.build(self._load(version), version)
        logger.info("experiment arm %r serves model version %s", alias, version)

    def _alias_version(self, alias: str) -> str | None:
        """The registered version ``alias`` points at (a version number is itself), None
        when it points nowhere."""
        if alias.isdigit():
            return alias
        mlflow.set_tracking_uri(self.settings.tracking_uri)
        found = alias_version(MlflowClient(), self.settings.model_name, alias)
        return None if found is None else str(found.version)

    def _load(self, version: str) -> Recommender:
        logger.info("loading %s version %s", self.settings.model_name, version)
        return load_recommender(f"models:/{self.settings.model_name}/{version}")

    def build(self, recommender: Recommender, version: str) -> Engine:
        """An engine for ``recommender`` with a freshly read item table.

        With the online store unreachable the engine starts on the catalog alone (no item
        features, ``materialized_at`` None); the next poll that reaches Redis reads them.
        """
        service = str(recommender.manifest.get("feature_service", RANKER_SERVICE))
        try:
            items = ItemTable.load(self.store, recommender.catalog, recommender.item_vectors(),
                                   service, item_views_materialized_at(self.store, service))
        except Exception as exc:
            logger.warning("item features unreadable (%s); serving on the catalog until the "
                           "online store answers", exc)
            self.breaker.failed()
            items = ItemTable.from_columns(recommender.catalog, recommender.item_vectors(), {})
        return Engine(recommender=recommender, store=self.store, model_version=version, items=items,
                      breaker=self.breaker, compiled_dir=self._compiled_dir,
                      approximate_from=self.serving.approximate_from,
                      explore_slots=self.serving.explore_slots)

    @property
    def _compiled_dir(self) -> Path | None:
        if not self.serving.compiled_ranker:
            return None
        return self.settings.data_dir / "serving" / "compiled"

    def _smoke_test(self, engine: Engine, users: int = 3) -> bool:
        """Answer a few known users (and an unknown one) with ``engine`` before it serves:
        a model that loads but cannot rank is kept out, and the current one keeps serving."""
        known = engine.recommender.candidates.generators[0].interactions.user_ids[:users]
        try:
            for user in [*known.tolist(), "smoke-test-unknown-user"]:
                if not engine.recommend(Query(user_id=str(user), n=5)).items:
                    raise ValueError(f"no items for {user!r}")
        except Exception:
            logger.exception("model version %s failed its smoke test; keeping version %s",
                             engine.model_version, self.engine.model_version)
            return False
        return True

    def swap(self, engine: Engine, cause: str) -> None:
        previous = self.engine.model_version
        self.engine = engine
        serving_version(engine.model_version, previous)
        MODEL_SWAPS.labels(cause=cause).inc()
        logger.info("swapped in model %s (%s)", engine.model_version, cause)

    def check(self) -> str | None:
        """Reload on a new champion or a new item materialization; returns the cause."""
        with self._lock:
            for alias in self._arm_aliases():
                try:  # a broken arm never blocks the champion's reloads
                    self._load_arm(alias)
                except Exception:
                    logger.exception("experiment arm %r not reloaded", alias)
                    MODEL_REJECTED.labels(reason="arm").inc()
            version = self._alias_version(CHAMPION)
            if version not in (None, self.engine.model_version, self.rejected):
                candidate = self.build(self._load(version), version)
                if not self._smoke_test(candidate):
                    MODEL_REJECTED.labels(reason="smoke test").inc()
                    self.rejected = version
                    return None
                self.swap(candidate, "champion")
                return "champion"
            self.store.refresh_registry()
            engine = self.engine
            service = engine.ranker_service
            stamp = item_views_materialized_at(self.store, service)
            if stamp is not None and stamp != engine.items.materialized_at:
                items = ItemTable.load(self.store, engine.recommender.catalog,
                                       engine.recommender.item_vectors(), service, stamp)
                self.swap(dataclasses.replace(engine, items=items), "materialization")
                for alias, arm in list(self.arms.items()):  # each with its own item vectors
                    self.arms[alias] = self.build(arm.recommender, arm.model_version)
                return "materialization"
        return None

    def start(self) -> None:
        """Poll every ``model_poll_seconds`` in a daemon thread (no-op when 0)."""
        if self.serving.model_poll_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.serving.model_poll_seconds):
            try:
                self.check()
            except Exception:  # a failed reload keeps the current model serving
                logger.exception("model reload failed; keeping version %s",
                                 self.engine.model_version)

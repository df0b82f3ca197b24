"""A/B tests: which variant serves a user.

Experiments live in the durable store (:mod:`recsys.experiments`, created through
``POST /api/v1/recs/experiments`` or Dagster): :class:`ExperimentTable` follows the running
ones, and a variant is an MLflow alias or version or a serving configuration. The older
form below, a split between aliases set in the environment, still works:

An experiment splits users between arms, each an MLflow model alias (``champion``,
``challenger``, ...) with a traffic weight, configured in ``RECSYS_SERVING_EXPERIMENTS``
as JSON, for example ``{"ranker-v2": {"champion": 0.5, "challenger": 0.5}}``. A request
that names the experiment (``experiment_id``) is served by its user's arm. Assignment is
a hash of experiment and user, so it is sticky across requests, workers and restarts,
independent between experiments, and needs no storage. Requests without a configured
experiment are served by the champion.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping

from recsys.experiments.assignment import assign as assign_variant
from recsys.experiments.model import Experiment, Variant
from recsys.experiments.store import ExperimentStore

logger = logging.getLogger(__name__)

Arms = Mapping[str, float]


class ExperimentConfigError(ValueError):
    """An experiment without arms, or with a weight that is not positive."""


def validate(experiments: Mapping[str, Arms]) -> dict[str, dict[str, float]]:
    """The experiments with each arm's weight normalised to a share of traffic."""
    out = {}
    for name, arms in experiments.items():
        if not arms:
            raise ExperimentConfigError(f"experiment {name!r} has no arms")
        bad = {alias: w for alias, w in arms.items() if not w > 0}
        if bad:
            raise ExperimentConfigError(f"experiment {name!r}: weights must be > 0, got {bad}")
        total = sum(arms.values())
        out[name] = {alias: weight / total for alias, weight in arms.items()}
    return out


def bucket(experiment_id: str, user_id: str) -> float:
    """A uniform number in [0, 1) fixed by the experiment and the user."""
    digest = hashlib.blake2b(f"{experiment_id}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign(experiment_id: str, user_id: str, arms: Arms) -> str:
    """The arm (model alias) of ``user_id``; arms take consecutive slices of [0, 1)."""
    point = bucket(experiment_id, user_id)
    edge = 0.0
    for alias, share in arms.items():
        edge += share
        if point < edge:
            return alias
    return next(reversed(list(arms)))  # rounding left the point just under 1.0


class ExperimentTable:
    """The running experiments of the durable store, re-read every ``refresh_seconds`` in
    the background (a stop or a new experiment takes effect within that interval)."""

    def __init__(self, store: ExperimentStore, refresh_seconds: float = 5.0):
        self.store, self.refresh_seconds = store, refresh_seconds
        self.by_surface: dict[str | None, Experiment] = {}
        self._stop = threading.Event()
        self.refresh()
        if refresh_seconds > 0:
            threading.Thread(target=self._loop, name="experiments-refresh", daemon=True).start()

    def refresh(self) -> None:
        running = self.store.list("running")
        self.by_surface = {e.surface: e for e in running}

    def route(self, surface: str | None, user_id: str) -> tuple[Experiment, Variant] | None:
        """The experiment splitting ``surface`` (None: requests naming no experiment) and
        the user's variant in it; None outside experiments."""
        experiment = self.by_surface.get(surface)
        if experiment is None:
            return None
        return experiment, experiment.variant(assign_variant(experiment, user_id))

    def models(self) -> set[str]:
        """MLflow aliases and versions the running experiments' variants name."""
        return {v.model_alias or v.model_version for e in self.by_surface.values()
                for v in e.variants if v.model_alias or v.model_version}

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # keep the last known experiments
                logger.exception("experiments not refreshed")

    def stop(self) -> None:
        self._stop.set()

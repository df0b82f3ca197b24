"""A/B tests between registered models: which MLflow alias serves a user in an experiment.

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
from collections.abc import Mapping

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

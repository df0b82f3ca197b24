"""Sticky assignment: a user's variant is a salted hash of the experiment and the user.

Sticky across requests, workers, replicas and restarts without storage; independent between
experiments (each has its own salt); variants take consecutive slices of [0, 100).
"""

from __future__ import annotations

import hashlib

from recsys.experiments.model import Experiment


def bucket(salt: str, experiment_id: str, user_id: str) -> float:
    """A uniform number in [0, 100) fixed by the salt, the experiment and the user."""
    key = f"{salt}\x00{experiment_id}\x00{user_id}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def assign(experiment: Experiment, user_id: str) -> str:
    """The name of the variant serving ``user_id`` in ``experiment``."""
    point = bucket(experiment.salt, experiment.experiment_id, user_id)
    edge = 0.0
    for variant in experiment.variants:
        edge += variant.percent
        if point < edge:
            return variant.name
    return experiment.variants[-1].name  # rounding left the point just under 100

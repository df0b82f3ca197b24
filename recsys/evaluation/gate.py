"""The promotion gate: whether a challenger's holdout figures allow it to become champion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: How much worse than the champion's recipe (relative NDCG) a challenger may score.
CHAMPION_TOLERANCE = 0.02


@dataclass(frozen=True)
class GateDecision:
    """The verdict and the figures it was taken on (``champion`` None without one)."""

    passed: bool
    metric: str
    challenger: float
    popularity: float
    champion: float | None


def promotion_decision(metrics: Mapping[str, float], k: int,
                       tolerance: float = CHAMPION_TOLERANCE) -> GateDecision:
    """The challenger (``ranker.ndcg_at_<k>``) must beat popularity and stay within
    ``tolerance`` (relative) of the champion's recipe retrained on the same window.

    ``metrics`` are the flat ``<model>.<metric>_at_<k>`` figures of the evaluation run.
    """
    key = f"ndcg_at_{k}"
    challenger = metrics[f"ranker.{key}"]
    popularity = metrics[f"popularity.{key}"]
    champion = metrics.get(f"champion.{key}")
    passed = challenger > popularity and (
        champion is None or challenger >= champion * (1 - tolerance))
    return GateDecision(passed, key, challenger, popularity, champion)

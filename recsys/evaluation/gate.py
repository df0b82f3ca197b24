"""The promotion gate: whether a challenger may become champion.

Relative rules (beat popularity, stay within ``tolerance`` of the champion's recipe retrained
on the same window) cannot see a window that is bad for both: a poisoned or truncated window
drags the champion's recipe down with the challenger. So the gate also holds absolute floors
(holdout NDCG@k and catalog coverage, training events and users) and a drift limit between
the training window and the previous champion's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from recsys.platform.settings import Settings

#: How much worse than the champion's recipe (relative NDCG) a challenger may score.
CHAMPION_TOLERANCE = 0.02
TRAINING_EVENTS, TRAINING_USERS, DRIFT = "training.events", "training.users", "drift.items_tvd"


@dataclass(frozen=True)
class GatePolicy:
    """The thresholds; the defaults hold for any real catalog (a toy one may lower them)."""

    tolerance: float = CHAMPION_TOLERANCE
    min_ndcg: float = 0.01
    min_coverage: float = 0.005
    min_events: int = 1000
    min_users: int = 50
    max_drift: float = 0.6

    @classmethod
    def from_settings(cls, settings: Settings) -> GatePolicy:
        return cls(min_ndcg=settings.gate_min_ndcg, min_coverage=settings.gate_min_coverage,
                   min_events=settings.gate_min_events, min_users=settings.gate_min_users,
                   max_drift=settings.gate_max_drift)


@dataclass(frozen=True)
class GateDecision:
    """The verdict, the figures it was taken on and why it failed (empty when it passed)."""

    passed: bool
    metric: str
    challenger: float
    popularity: float
    champion: float | None
    failures: list[str] = field(default_factory=list)


def items_drift(current: pd.DataFrame, previous: pd.DataFrame) -> float:
    """Total variation distance (0: same, 1: disjoint) between the shares of interaction
    weight per item of two windows of interactions (``item_id``, ``weight``)."""
    shares = [frame.groupby("item_id")["weight"].sum() for frame in (current, previous)]
    shares = [s / s.sum() for s in shares if s.sum() > 0]
    if len(shares) < 2:
        return 0.0
    both = pd.concat(shares, axis=1).fillna(0.0)
    return float(0.5 * (both.iloc[:, 0] - both.iloc[:, 1]).abs().sum())


def promotion_decision(metrics: Mapping[str, float], k: int,
                       policy: GatePolicy | None = None) -> GateDecision:
    """Judge the challenger (``ranker.*``) on the flat ``<model>.<metric>`` figures of its
    evaluation run plus ``training.events``, ``training.users`` and, when a champion exists,
    ``drift.items_tvd``."""
    policy = policy or GatePolicy()
    key = f"ndcg_at_{k}"
    challenger = metrics[f"ranker.{key}"]
    popularity = metrics[f"popularity.{key}"]
    champion = metrics.get(f"champion.{key}")
    checks = [
        (challenger > popularity, f"NDCG@{k} {challenger:.4f} does not beat popularity's "
                                  f"{popularity:.4f}"),
        (champion is None or challenger >= champion * (1 - policy.tolerance),
         f"NDCG@{k} {challenger:.4f} trails the champion's recipe {champion} by more than "
         f"{policy.tolerance:.0%}"),
        (challenger >= policy.min_ndcg, f"NDCG@{k} {challenger:.4f} under the floor "
                                        f"{policy.min_ndcg}"),
        (metrics.get("ranker.catalog_coverage", 0.0) >= policy.min_coverage,
         f"catalog coverage {metrics.get('ranker.catalog_coverage')} under the floor "
         f"{policy.min_coverage}"),
        (metrics.get(TRAINING_EVENTS, 0) >= policy.min_events,
         f"{metrics.get(TRAINING_EVENTS)} training interactions, fewer than {policy.min_events}"),
        (metrics.get(TRAINING_USERS, 0) >= policy.min_users,
         f"{metrics.get(TRAINING_USERS)} training users, fewer than {policy.min_users}"),
        (metrics.get(DRIFT, 0.0) <= policy.max_drift,
         f"the items' share drifted {metrics.get(DRIFT)} from the champion's window (limit "
         f"{policy.max_drift})"),
    ]
    failures = [reason for ok, reason in checks if not ok]
    return GateDecision(not failures, key, challenger, popularity, champion, failures)


def window_figures(interactions: pd.DataFrame, holdout_start: pd.Timestamp,
                   champion_window: tuple[pd.Timestamp, pd.Timestamp] | None) -> dict[str, float]:
    """What the floors and the drift limit read: the training interactions (pairs before the
    holdout) and users, and the drift of the items' shares from the champion's window."""
    train = interactions[interactions["timestamp"] < holdout_start]
    figures = {TRAINING_EVENTS: float(len(train)),
               TRAINING_USERS: float(train["user_id"].nunique())}
    if champion_window is not None:
        start, end = champion_window
        ts = interactions["timestamp"]
        figures[DRIFT] = items_drift(train, interactions[(ts >= start) & (ts <= end)])
    return figures

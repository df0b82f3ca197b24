"""Drift of the latest day's events from the training window before it.

Three figures, each against a threshold of :class:`DriftPolicy`:

- ``event_mix_tvd``: total variation distance (0: same, 1: disjoint) of the event-type shares;
- ``items_tvd``: total variation distance of the items' shares of events (a single day of a
  large catalog is a small sample, so its threshold is loose);
- ``activity_psi``: population stability index of events per active user per day, on the
  bins :data:`ACTIVITY_BINS` (with the mean and standard deviation of both sides alongside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Upper edges of the events-per-user-per-day bins of the PSI (the last bin is open).
ACTIVITY_BINS = (1, 2, 4, 8, 16, 32)
#: Floor of a bin's share in the PSI, so that an empty bin gives a finite figure.
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class DriftPolicy:
    """The largest drift that still passes (PSI over 0.25 is the usual "significant shift")."""

    max_event_mix_tvd: float = 0.15
    max_items_tvd: float = 0.7
    max_activity_psi: float = 0.25


@dataclass(frozen=True)
class DriftReport:
    """The figures of one comparison and the thresholds they broke (empty when none)."""

    latest_day: str | None
    latest_events: int
    window_events: int
    event_mix_tvd: float = 0.0
    items_tvd: float = 0.0
    activity_psi: float = 0.0
    activity_mean: tuple[float, float] = (0.0, 0.0)
    activity_std: tuple[float, float] = (0.0, 0.0)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def figures(self) -> dict[str, float | int | str]:
        """Flat figures for a check's metadata (``*_window`` / ``*_latest`` for the pairs)."""
        return {
            "latest_day": self.latest_day or "none",
            "latest_events": self.latest_events, "window_events": self.window_events,
            "event_mix_tvd": round(self.event_mix_tvd, 4), "items_tvd": round(self.items_tvd, 4),
            "activity_psi": round(self.activity_psi, 4),
            "activity_mean_window": round(self.activity_mean[0], 4),
            "activity_mean_latest": round(self.activity_mean[1], 4),
            "activity_std_window": round(self.activity_std[0], 4),
            "activity_std_latest": round(self.activity_std[1], 4),
        }


def total_variation(left: pd.Series, right: pd.Series) -> float:
    """Total variation distance between two distributions given as counts (or weights) by
    label; 0 when either side is empty."""
    if left.sum() <= 0 or right.sum() <= 0:
        return 0.0
    both = pd.concat([left / left.sum(), right / right.sum()], axis=1).fillna(0.0)
    return float(0.5 * (both.iloc[:, 0] - both.iloc[:, 1]).abs().sum())


def population_stability_index(expected: Sequence[float], actual: Sequence[float],
                               edges: Sequence[float] = ACTIVITY_BINS) -> float:
    """PSI = Σ (a − e) · ln(a / e) over the bins ``(-inf, edges[0]], (edges[0], edges[1]], …,
    (edges[-1], inf)``, each share floored at :data:`PSI_FLOOR`; 0 when either side is empty."""
    if len(expected) == 0 or len(actual) == 0:
        return 0.0
    bins = [-np.inf, *edges, np.inf]
    shares = []
    for values in (expected, actual):
        counts, _ = np.histogram(np.asarray(values, dtype=float), bins=bins)
        shares.append(np.maximum(counts / counts.sum(), PSI_FLOOR))
    e, a = shares
    return float(np.sum((a - e) * np.log(a / e)))


def split_latest_day(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """The events before the latest (UTC) day, the latest day's and that day (``YYYY-MM-DD``)."""
    if events.empty:
        return events, events, None
    days = _days(events)
    latest = days.max()
    return events[days < latest], events[days == latest], latest.strftime("%Y-%m-%d")


def _days(events: pd.DataFrame) -> pd.Series:
    """Each event's UTC day, as its midnight (a floor: formatting millions of stamps as text
    took minutes)."""
    return pd.to_datetime(events["timestamp"], utc=True).dt.floor("D")


def _activity(events: pd.DataFrame) -> pd.Series:
    """Events per active user per (UTC) day."""
    return events.groupby([events["user_id"], _days(events)]).size()


def _moments(values: pd.Series) -> tuple[float, float]:
    if values.empty:
        return 0.0, 0.0
    return float(values.mean()), float(values.std(ddof=0))


def event_drift(events: pd.DataFrame, policy: DriftPolicy | None = None) -> DriftReport:
    """Compare the latest day of ``events`` (``user_id``, ``item_id``, ``event_type``,
    ``timestamp``) with every earlier day. With no earlier day there is nothing to compare
    with: the report passes with zero figures."""
    policy = policy or DriftPolicy()
    window, latest, day = split_latest_day(events)
    if window.empty or latest.empty:
        return DriftReport(day, len(latest), len(window))
    mix = total_variation(window["event_type"].value_counts(), latest["event_type"].value_counts())
    items = total_variation(window["item_id"].value_counts(), latest["item_id"].value_counts())
    before, after = _activity(window), _activity(latest)
    psi = population_stability_index(before.to_numpy(), after.to_numpy())
    checks = [
        (mix <= policy.max_event_mix_tvd,
         f"event-type mix drifted {mix:.3f} (limit {policy.max_event_mix_tvd})"),
        (items <= policy.max_items_tvd,
         f"items' shares drifted {items:.3f} (limit {policy.max_items_tvd})"),
        (psi <= policy.max_activity_psi,
         f"events per user PSI {psi:.3f} (limit {policy.max_activity_psi})"),
    ]
    return DriftReport(
        latest_day=day, latest_events=len(latest), window_events=len(window),
        event_mix_tvd=mix, items_tvd=items, activity_psi=psi,
        activity_mean=(_moments(before)[0], _moments(after)[0]),
        activity_std=(_moments(before)[1], _moments(after)[1]),
        failures=[reason for ok, reason in checks if not ok],
    )

"""From events to implicit-feedback interactions (one weighted row per user and item).

The weights encode how strong a signal each event type is. Every candidate generator and the
evaluation read interactions through :func:`to_interactions`, so the mapping lives here only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Confidence weight of one event of each type; ``rate`` uses its rating (1-5) instead.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "add_to_cart": 3.0,
    "purchase": 5.0,
    "watch": 2.0,
    "watchlist_add": 2.0,
    "watchlist_remove": 0.0,
    "rate": 1.0,
}


def event_weights(events: pd.DataFrame) -> np.ndarray:
    """Weight of each event row: the type's weight, or the rating for ``rate`` events."""
    weights = events["event_type"].map(EVENT_WEIGHTS).fillna(1.0).to_numpy(dtype=np.float64)
    is_rate = (events["event_type"] == "rate").to_numpy()
    if is_rate.any():
        ratings = events["value"].to_numpy(dtype=np.float64)
        weights[is_rate] = np.nan_to_num(ratings[is_rate], nan=1.0)
    return weights


def to_interactions(events: pd.DataFrame) -> pd.DataFrame:
    """Aggregate events to ``user_id, item_id, timestamp, weight`` rows.

    ``timestamp`` is the pair's last event (UTC) and ``weight`` the sum of event weights.
    Pairs whose weight sums to zero or less (only removals) are dropped: they carry no
    positive signal.
    """
    frame = events[["user_id", "item_id", "timestamp"]].copy()
    frame["weight"] = event_weights(events)
    grouped = frame.groupby(["user_id", "item_id"], sort=False, observed=True).agg(
        timestamp=("timestamp", "max"), weight=("weight", "sum")
    )
    grouped = grouped[grouped["weight"] > 0].reset_index()
    return grouped.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)

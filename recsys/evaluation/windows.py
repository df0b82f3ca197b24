"""The data window of a training run, cut in three by time at UTC midnights.

``base`` [start, label_start)  candidates are fitted here;
``label`` [label_start, holdout_start)  the ranker learns which candidates users then chose;
``holdout`` [holdout_start, end]  evaluation only.

Cutting at midnights keeps daily feature rows from straddling a cut.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class Windows:
    """UTC cut points of the data window (see the module docstring)."""

    start: pd.Timestamp
    label_start: pd.Timestamp
    holdout_start: pd.Timestamp
    end: pd.Timestamp

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in asdict(self).items()}


def time_windows(interactions: pd.DataFrame, holdout_fraction: float,
                 label_fraction: float) -> Windows:
    """Cut the interactions' time span at day boundaries: the last ``holdout_fraction`` of
    the events is the holdout, the last ``label_fraction`` of the rest the label window."""
    ts = interactions["timestamp"]
    start, end = ts.min(), ts.max()
    holdout = ts.quantile(1 - holdout_fraction).ceil("D")
    label = ts[ts < holdout].quantile(1 - label_fraction).ceil("D")
    if not start < label < holdout <= end:
        raise ValueError(
            f"data window {start}..{end} too short to cut label ({label}) and holdout "
            f"({holdout}) days; it needs several days of events"
        )
    return Windows(start=start, label_start=label, holdout_start=holdout, end=end)


def before(interactions: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    return interactions[interactions["timestamp"] < cut]


def between(interactions: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    ts = interactions["timestamp"]
    return interactions[(ts >= lo) & (ts < hi)]

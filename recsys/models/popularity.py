"""Popularity: the same most-interacted items for every user, and the fallback list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.models.generator import CandidateGenerator
from recsys.models.matrix import InteractionMatrix


class PopularityCandidates(CandidateGenerator):
    """The most popular training items, the same list for every user.

    Popularity is the sum of interaction weights per item (the interaction count when
    unweighted). With ``half_life_days`` every interaction is first multiplied by
    ``0.5 ** (age / half_life_days)``, where ``age`` is its distance in days to the latest
    training timestamp.
    """

    def __init__(self, half_life_days: float | None = None, name: str = "popularity"):
        super().__init__(name)
        if half_life_days is not None and not half_life_days > 0:
            raise ValueError(f"half_life_days must be positive, got {half_life_days}")
        self.half_life_days = half_life_days
        self._popularity: np.ndarray | None = None

    def _fit(self, frame: pd.DataFrame, matrix: InteractionMatrix) -> None:
        if self.half_life_days is None:
            self._popularity = np.asarray(matrix.matrix.sum(axis=0), dtype=np.float32).ravel()
            return
        if "timestamp" not in frame.columns:
            raise ValueError("half_life_days needs a timestamp column")
        weights = frame["weight"].to_numpy(float) if "weight" in frame else np.ones(len(frame))
        age_days = (frame["timestamp"].max() - frame["timestamp"]).dt.total_seconds() / 86400.0
        decayed = weights * np.exp2(-age_days.to_numpy() / self.half_life_days)
        cols = matrix.item_indices(frame["item_id"].astype(str).tolist())
        self._popularity = np.bincount(cols, decayed, minlength=matrix.n_items).astype(np.float32)

    @property
    def popularity(self) -> np.ndarray:
        """Popularity of each item column (float32)."""
        if self._popularity is None:
            raise RuntimeError("popularity is not fitted")
        return self._popularity

    def user_scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity, (rows.size, 1))

    def item_scores(self, cols: np.ndarray) -> np.ndarray:
        """Popularity ranks a session as it ranks anyone."""
        return self.popularity

    def ranking(self, n: int) -> list[str]:
        """The ``n`` most popular items overall, best first (the fallback list)."""
        order = np.argsort(-self.popularity, kind="stable")[:n]
        return self.interactions.item_ids[order].tolist()

    def _params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days}

    def _save_state(self, path: Path) -> None:
        np.savez(path / "popularity.npz", popularity=self._popularity)

    def _load_state(self, path: Path) -> None:
        with np.load(path / "popularity.npz", allow_pickle=False) as arrays:
            self._popularity = arrays["popularity"]


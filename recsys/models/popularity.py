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

    @property
    def order(self) -> np.ndarray:
        """Item columns from the most popular down, ties by column: every user's list is
        this order without the user's seen items (no users x items scores needed)."""
        cached = getattr(self, "_order", None)
        if cached is None or len(cached) != len(self.popularity):
            cached = np.lexsort((np.arange(len(self.popularity)), -self.popularity))
            self._order = cached
        return cached

    def user_scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity, (rows.size, 1))

    def top_for_user(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._top_of_one_row(row, n)

    def _top_of_rows(self, rows: np.ndarray, n: int,
                     exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` columns of :attr:`order` each user has not seen: the head of the
        order long enough for the batch's longest history, its seen entries masked."""
        n = min(n, len(self.popularity))
        csr = self.interactions.matrix[rows]
        seen_counts = np.diff(csr.indptr) if exclude_seen else np.zeros(len(rows), np.int64)
        head = self.order[:n + int(seen_counts.max(initial=0))]
        seen = np.zeros((len(rows), len(head)), dtype=bool)
        if exclude_seen:
            at = np.full(len(self.popularity), -1, dtype=np.int64)
            at[head] = np.arange(len(head))
            coo = csr.tocoo()
            inside = at[coo.col] >= 0
            seen[coo.row[inside], at[coo.col[inside]]] = True
        slot = np.cumsum(~seen, axis=1) - 1  # each unseen column's place in the user's list
        take = ~seen & (slot < n)
        cols = np.zeros((len(rows), n), dtype=np.int64)
        values = np.full((len(rows), n), -np.inf, dtype=np.float32)
        user, position = np.nonzero(take)
        cols[user, slot[user, position]] = head[position]
        values[user, slot[user, position]] = self.popularity[head[position]]
        return cols, values

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


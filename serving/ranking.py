"""Second stage: the ranker's input matrix for one user's candidates, built with array ops.

:func:`training.ranker.feature_matrix` defines the features (and trains on them); this
module computes the same columns for a single user without DataFrames or per-row Python:
candidate columns are copied, item features gathered from the in-process
:class:`~serving.items.ItemTable`, user features broadcast, and the derived features
(``category_match``, ``recent_sim_mean``, ``recent_sim_max``) computed as matrix products.
``tests/serving/test_ranking.py`` checks the equality with the training function.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from serving.compiled_ranker import CompiledRanker, compile_ranker
from serving.items import ItemTable
from serving.retrieval import Candidates
from training.ranker import AFFINITY, RECENT_ITEMS
from training.recommender import Recommender

DERIVED = ("category_match", "recent_sim_mean", "recent_sim_max")


def similarity_to_recent(
    items: ItemTable, rows: np.ndarray, recent: list[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max cosine similarity of each candidate row to the user's recent items.

    Same values as :func:`training.ranker.recent_similarity`: a recent item equal to the
    candidate is skipped, items without an embedding contribute nothing, 0 when none is left.
    """
    mean = np.zeros(len(rows), dtype=np.float32)
    best = np.zeros(len(rows), dtype=np.float32)
    if not recent or len(rows) == 0:
        return mean, best
    history = items.positions(list(recent))
    history = history[history >= 0]
    history = history[items.has_vector[history]]
    if history.size == 0:
        return mean, best
    sims = items.vectors[rows] @ items.vectors[history].T
    valid = rows[:, None] != history[None, :]
    count = valid.sum(axis=1)
    ok = (count > 0) & items.has_vector[rows]
    mean[ok] = np.where(valid, sims, 0.0).sum(axis=1)[ok] / count[ok]
    best[ok] = np.where(valid, sims, -np.inf).max(axis=1)[ok]
    return mean, best


class Ranker:
    """Scores candidates with the recommender's LightGBM ranker (ALS score without one).

    With ``compiled_dir`` the booster is compiled (:mod:`serving.compiled_ranker`) and the
    compiled copy scores; without it, or when compiling fails, LightGBM does.
    """

    def __init__(self, recommender: Recommender, items: ItemTable,
                 compiled_dir: Path | None = None):
        self.booster = recommender.ranker.booster if recommender.ranker is not None else None
        self.compiled: CompiledRanker | None = None
        if self.booster is not None and compiled_dir is not None:
            self.compiled = compile_ranker(self.booster, compiled_dir)
        self.features = list(recommender.ranker.features) if recommender.ranker else []
        self.items = items
        item_index = {name: j for j, name in enumerate(items.feature_names)}
        self._item_dst = np.array([j for j, f in enumerate(self.features) if f in item_index],
                                  dtype=np.int64)
        self._item_src = np.array([item_index[f] for f in self.features if f in item_index],
                                  dtype=np.int64)
        self._other = [(j, f) for j, f in enumerate(self.features)
                       if f not in item_index and f not in DERIVED]

    def matrix(self, candidates: Candidates, user: Mapping[str, object]) -> np.ndarray:
        """``(len(candidates), n_features)`` float32 inputs in the ranker's column order."""
        rows = candidates.rows
        X = np.full((len(rows), len(self.features)), np.nan, dtype=np.float32)
        if self._item_dst.size:
            X[:, self._item_dst] = self.items.features[np.ix_(rows, self._item_src)]
        for j, name in self._other:
            column = candidates.columns.get(name)
            if column is not None:
                X[:, j] = column
            else:
                value = user.get(name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    X[:, j] = value
        derived: dict[str, np.ndarray] = {}
        if "category_match" in self.features:
            derived["category_match"] = self.items.category_match(rows, user.get(AFFINITY))
        if "recent_sim_mean" in self.features or "recent_sim_max" in self.features:
            recent = user.get(RECENT_ITEMS)
            mean, best = similarity_to_recent(self.items, rows, recent)  # type: ignore[arg-type]
            derived.update(recent_sim_mean=mean, recent_sim_max=best)
        for name, values in derived.items():
            X[:, self.features.index(name)] = values
        return X

    def score(self, candidates: Candidates, user: Mapping[str, object]) -> np.ndarray:
        """Ranker scores, higher is better."""
        if self.booster is None:
            return np.nan_to_num(candidates.columns["als_score"], nan=-np.inf)
        X = self.matrix(candidates, user)
        if self.compiled is not None:
            return self.compiled.predict(X)
        return self.booster.predict(X, num_threads=1)

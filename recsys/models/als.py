"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) with ``implicit``'s ALS."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import implicit.cpu.als
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from recsys.models.generator import CandidateGenerator
from recsys.models.item_index import ItemIndex, build_index
from recsys.models.matrix import InteractionMatrix


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and container CPU sets)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class ALSCandidates(CandidateGenerator):
    """Implicit-feedback matrix factorisation with ``implicit``'s CPU ALS.

    ``implicit`` takes ``alpha * weight`` as the confidence of an observed pair (unobserved
    pairs have confidence 1 and preference 0); a user-item score is the dot product of their
    ``factors``-dimensional vectors.

    Parameters
    ----------
    factors
        Latent dimension.
    regularization
        L2 penalty on the factors.
    alpha
        Confidence scaling of observed interactions.
    iterations
        ALS sweeps (each solves users, then items).
    random_state
        Seed of the factor initialisation.
    num_threads
        Solver threads; 0 means every CPU available to this process. BLAS is limited to one
        thread while fitting, as ``implicit`` recommends.
    """

    def __init__(
        self,
        factors: int = 32,
        regularization: float = 5.0,
        alpha: float = 3.0,
        iterations: int = 20,
        random_state: int = 42,
        num_threads: int = 0,
        name: str = "als",
    ):
        super().__init__(name)
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self._model: implicit.cpu.als.AlternatingLeastSquares | None = None
        self._index: ItemIndex | None = None

    @property
    def model(self) -> implicit.cpu.als.AlternatingLeastSquares:
        """The fitted ``implicit`` model."""
        if self._model is None:
            raise RuntimeError(f"ALSCandidates {self.name!r} is not fitted")
        return self._model

    def _fit(self, frame: pd.DataFrame, matrix: InteractionMatrix) -> None:
        with threadpool_limits(1, "blas"):
            model = implicit.cpu.als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads or available_cpus(),
            )
            model.fit(matrix.matrix, show_progress=False)
        self._model = model

    @property
    def item_factors(self) -> np.ndarray:
        """``(n_items, factors)`` item vectors, in the training matrix's column order."""
        return np.asarray(self.model.item_factors)

    def user_scores(self, rows: np.ndarray) -> np.ndarray:
        return self.model.user_factors[rows] @ self.model.item_factors.T

    def use_index(self, approximate_from: int) -> None:
        """Answer :meth:`top_for_user` from an item index: exact below ``approximate_from``
        items, faiss IVF from there on (:mod:`recsys.models.item_index`)."""
        self._index = build_index(self.item_factors, approximate_from)

    def top_for_user(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None:
            return super().top_for_user(row, n)
        return self._index.search(self.model.user_factors[row], n, self.seen_columns(row))

    def _top_of_rows(self, rows: np.ndarray, n: int,
                     exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """``implicit``'s batched ``recommend`` (its filtered slots marked ``-inf``)."""
        matrix = self.interactions
        ids, scores = self.model.recommend(
            rows, matrix.matrix[rows], N=min(n, matrix.n_items),
            filter_already_liked_items=exclude_seen,
        )
        empty = (ids < 0) | (scores <= np.finfo(np.float32).min)
        return np.where(empty, 0, ids), np.where(empty, -np.inf, scores).astype(np.float32)

    def score(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray:
        """Dot-product scores of ``item_ids`` for one user; NaN for unknown users or items."""
        matrix = self.interactions
        out = np.full(len(item_ids), np.nan, dtype=np.float32)
        row = matrix.user_indices([user_id])[0]
        cols = matrix.item_indices(item_ids)
        if row >= 0:
            known = cols >= 0
            out[known] = self.model.item_factors[cols[known]] @ self.model.user_factors[row]
        return out

    def similar_items(self, item_id: str, n: int) -> tuple[list[str], np.ndarray]:
        """The ``n`` items with the most cosine-similar factors, excluding the item itself."""
        matrix = self.interactions
        col = matrix.item_indices([item_id])[0]
        if col < 0:
            return [], np.empty(0, np.float32)
        ids, scores = self.model.similar_items(int(col), N=min(n + 1, matrix.n_items))
        keep = ids != col
        return matrix.item_ids[ids[keep][:n]].tolist(), scores[keep][:n]

    def _params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "random_state": self.random_state,
            "num_threads": self.num_threads,
        }

    def _save_state(self, path: Path) -> None:
        model = self.model.to_cpu() if hasattr(self.model, "to_cpu") else self.model
        model.save(str(path / "als.npz"))

    def _load_state(self, path: Path) -> None:
        with threadpool_limits(1, "blas"):
            model = implicit.cpu.als.AlternatingLeastSquares.load(str(path / "als.npz"))
        model.num_threads = self.num_threads or available_cpus()
        self._model = model


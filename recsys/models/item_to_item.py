"""Item-to-item generators: a user's history times an item x item weight matrix.

* :class:`EASECandidates`: closed-form shallow autoencoder (Steck 2019).
* :class:`ItemKNNCandidates`: item-item cosine neighbourhoods.

Both score a session of seed items as they score a user's history, so they also serve users
the model never saw ("because you viewed X").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.models.generator import CandidateGenerator
from recsys.models.matrix import InteractionMatrix, csr_of, save_csr
from recsys.models.topn import sparse_top_n, top_n_of_row


def recency_weighted(
    frame: pd.DataFrame, matrix: InteractionMatrix, half_life_events: float
) -> sp.csr_matrix:
    """The training matrix with each user's items decayed by how many came after them.

    The user's distinct items are ordered by their latest timestamp (ties by item id); the
    ``a``-th most recent (``a = 0`` for the latest) keeps ``0.5 ** (a / half_life_events)``
    of its weight. Ages count items, not days: the next item a user picks follows their last
    few picks whether those took a minute or a month.
    """
    if "timestamp" not in frame.columns:
        raise ValueError("half_life_events needs a timestamp column")
    last = frame.groupby(["user_id", "item_id"], sort=False, observed=True)["timestamp"].max()
    pairs = last.reset_index().sort_values(
        ["user_id", "timestamp", "item_id"], ascending=[True, False, True], kind="stable"
    )
    age = pairs.groupby("user_id", sort=False).cumcount().to_numpy(np.float64)
    rows = matrix.user_indices(pairs["user_id"].astype(str).tolist())
    cols = matrix.item_indices(pairs["item_id"].astype(str).tolist())
    decay = sp.csr_matrix(
        (np.exp2(-age / half_life_events), (rows, cols)), shape=matrix.matrix.shape
    )
    return sp.csr_matrix(matrix.matrix.multiply(decay), dtype=np.float32)


def gram_of(matrix: InteractionMatrix) -> np.ndarray:
    """``X^T X`` of the training matrix, dense float64 (EASE's system before the ridge)."""
    x = matrix.matrix
    return (x.T @ x).toarray().astype(np.float64)


def ease_weights(gram: np.ndarray, l2: float, dropout: float = 0.0) -> np.ndarray:
    """EASE's ``W = I - P / diag(P)`` with ``P = (gram + l2 I)^-1``, zero diagonal, float32.
    ``gram`` is left unchanged, so one Gram matrix serves every ``l2`` of a grid.

    With ``dropout`` ``p > 0`` it is the denoising linear autoencoder (DLAE, Steck 2020):
    ``W = (gram + L)^-1 gram`` with ``L = p / (1 - p) diag(gram) + l2 I``, i.e.
    ``W_ij = -P_ij L_jj`` with ``P = (gram + L)^-1``; a popular item's own column is
    penalised in proportion to its count instead of EASE's hard zero-diagonal constraint
    (the diagonal, which only scores seen items, is set to zero all the same).
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    penalty = l2 + dropout / (1.0 - dropout) * np.diag(gram)
    system = gram.copy()
    system[np.diag_indices_from(system)] += penalty
    precision = np.linalg.inv(system)
    weights = (-precision / np.diag(precision) if dropout == 0.0
               else -precision * penalty[np.newaxis, :])
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


class ItemToItemCandidates(CandidateGenerator):
    """Scores ``x_u @ W``: a user's training row times an item x item weight matrix ``W``.

    With ``half_life_events`` the row ``x_u`` is first decayed by :func:`recency_weighted`,
    so the user's latest items speak loudest; ``W`` is always learned from the plain matrix.
    """

    def __init__(self, name: str, half_life_events: float | None = None):
        super().__init__(name)
        if half_life_events is not None and not half_life_events > 0:
            raise ValueError(f"half_life_events must be positive, got {half_life_events}")
        self.half_life_events = half_life_events
        self._weights: np.ndarray | sp.csr_matrix | None = None
        self._history: sp.csr_matrix | None = None

    def fit(self, interactions: pd.DataFrame) -> Self:
        super().fit(interactions)
        if self.half_life_events is not None:
            self._history = recency_weighted(interactions, self.interactions, self.half_life_events)
        return self

    @property
    def weights(self) -> np.ndarray | sp.csr_matrix:
        """``W[i, j]``: how much interacting with item ``i`` raises the score of item ``j``."""
        if self._weights is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r} is not fitted")
        return self._weights

    @property
    def history(self) -> sp.csr_matrix:
        """The user rows scores are computed from (recency-decayed with ``half_life_events``)."""
        return self._history if self._history is not None else self.interactions.matrix

    def user_scores(self, rows: np.ndarray) -> np.ndarray:
        out = self.history[rows] @ self.weights
        return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float32)

    def item_scores(self, cols: np.ndarray) -> np.ndarray:
        """``sum of W[i]`` over the session's items."""
        return np.asarray(self.weights[cols].sum(axis=0), dtype=np.float32).reshape(-1)

    def _top_of_rows(self, rows: np.ndarray, n: int,
                     exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.weights, np.ndarray):
            return super()._top_of_rows(rows, n, exclude_seen)
        # Sparse W (item-kNN): sparse scores, no users x items row materialised.
        seen = self.interactions.matrix[rows] if exclude_seen else None
        return sparse_top_n(self.history[rows] @ self.weights, n, seen)

    def top_for_user(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        weights = self.weights
        if not isinstance(weights, np.ndarray):
            return self._top_of_one_row(row, n)
        # Dense W: x_u @ W over the user's few nonzero columns only.
        history = self.history
        seen = history.indices[history.indptr[row]:history.indptr[row + 1]]
        values = history.data[history.indptr[row]:history.indptr[row + 1]]
        scores = values.astype(np.float32) @ weights[seen]
        scores[self.seen_columns(row)] = -np.inf
        return top_n_of_row(scores, n)

    def _save_state(self, path: Path) -> None:
        if self._history is not None:
            save_csr(path / "history.npz", self._history)
        if sp.issparse(self.weights):
            save_csr(path / "item_weights.npz", self.weights)
        else:
            np.savez(path / "item_weights.npz", dense=self.weights)

    def _load_state(self, path: Path) -> None:
        if (path / "history.npz").is_file():
            with np.load(path / "history.npz", allow_pickle=False) as arrays:
                self._history = csr_of(arrays, self.interactions.matrix.shape)
        with np.load(path / "item_weights.npz", allow_pickle=False) as arrays:
            self._weights = arrays["dense"] if "dense" in arrays else csr_of(arrays)


class EASECandidates(ItemToItemCandidates):
    """EASE (Steck 2019): closed-form item-item regression with a zero diagonal.

    ``P = (X^T X + l2 * I)^-1`` and ``W = I - P / diag(P)`` (column ``j`` divided by
    ``P[j, j]``), i.e. ``W[i, j] = -P[i, j] / P[j, j]`` off the diagonal and 0 on it. Cost is
    a dense ``n_items^2`` inversion, so catalogues above ``max_items`` are refused.

    Parameters
    ----------
    l2
        Ridge penalty ``lambda``; larger values shrink towards popularity.
    max_items
        Largest catalogue accepted (20,000 items take about 3 GiB while fitting).
    half_life_events
        Recency decay of the user's history when scoring (see :func:`recency_weighted`);
        ``None`` weighs the whole history alike.
    dropout
        0: EASE; ``p > 0``: its denoising variant DLAE (see :func:`ease_weights`).
    """

    def __init__(
        self, l2: float = 500.0, max_items: int = 20_000, half_life_events: float | None = None,
        name: str = "ease", dropout: float = 0.0,
    ):
        super().__init__(name, half_life_events)
        if not l2 > 0:
            raise ValueError(f"l2 must be positive, got {l2}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.l2 = l2
        self.dropout = dropout
        self.max_items = max_items

    def _fit(self, frame: pd.DataFrame, matrix: InteractionMatrix) -> None:
        if matrix.n_items > self.max_items:
            raise ValueError(f"EASE on {matrix.n_items} items exceeds max_items={self.max_items}")
        preset, self._preset = getattr(self, "_preset", None), None
        self._weights = preset if preset is not None else ease_weights(gram_of(matrix), self.l2,
                                                                   self.dropout)

    def fit_with_weights(self, interactions: pd.DataFrame, weights: np.ndarray) -> Self:
        """Fit on ``interactions`` with ``W`` already solved (:func:`ease_weights` of the same
        interactions, ``l2`` and ``dropout``): a tuning grid solves once per system and shares
        it across the settings that differ only in how histories are weighted."""
        self._preset = weights
        return self.fit(interactions)

    def _params(self) -> dict[str, Any]:
        return {
            "l2": self.l2, "max_items": self.max_items, "half_life_events": self.half_life_events,
            "dropout": self.dropout,
        }


class ItemKNNCandidates(ItemToItemCandidates):
    """Item-item cosine neighbourhoods.

    ``sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrinkage)`` over the item columns of the
    training matrix; each item keeps its ``neighbours`` most similar items (itself excluded),
    so ``W`` is sparse with at most ``neighbours`` entries per row. ``half_life_events``
    decays the user's history when scoring, as in :class:`EASECandidates`.
    """

    def __init__(
        self, neighbours: int = 100, shrinkage: float = 0.0,
        half_life_events: float | None = None, name: str = "itemknn",
    ):
        super().__init__(name, half_life_events)
        if neighbours < 1 or shrinkage < 0:
            raise ValueError("neighbours must be positive and shrinkage non-negative")
        self.neighbours = neighbours
        self.shrinkage = shrinkage

    def _fit(self, frame: pd.DataFrame, matrix: InteractionMatrix) -> None:
        x = matrix.matrix.tocsc()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel())
        sim = (x.T @ x).tocsr().astype(np.float64)
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        rows = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        sim.data /= norms[rows] * norms[sim.indices] + self.shrinkage
        keep_rows, keep_cols, keep_vals = [], [], []
        for i in range(sim.shape[0]):
            start, end = sim.indptr[i], sim.indptr[i + 1]
            vals = sim.data[start:end]
            if vals.size == 0:
                continue
            top = np.argpartition(-vals, min(self.neighbours, vals.size) - 1)[: self.neighbours]
            keep_rows.append(np.full(top.size, i))
            keep_cols.append(sim.indices[start:end][top])
            keep_vals.append(vals[top])
        empty = [np.empty(0, np.int64)]
        self._weights = sp.csr_matrix(
            (
                np.concatenate(keep_vals or [np.empty(0)]),
                (np.concatenate(keep_rows or empty), np.concatenate(keep_cols or empty)),
            ),
            shape=sim.shape,
            dtype=np.float32,
        )

    def _params(self) -> dict[str, Any]:
        return {
            "neighbours": self.neighbours, "shrinkage": self.shrinkage,
            "half_life_events": self.half_life_events,
        }



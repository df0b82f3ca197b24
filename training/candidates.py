"""Candidate generators: cheap, recall-oriented first-stage recommenders.

Every generator implements :class:`CandidateGenerator`: ``fit`` on an interaction frame
(``user_id``, ``item_id``, ``timestamp``, optional ``weight``), ``recommend`` the top ``n``
items per user over the full catalogue, and ``save``/``load`` a directory without pickle
(``meta.json`` with the class and hyper-parameters, ``interactions.npz`` + ``ids.json`` for
the training matrix, and the model's own arrays in ``.npz`` files).

* :class:`PopularityCandidates`: most interacted items, optionally recency-decayed.
* :class:`ALSCandidates`: ``implicit`` alternating least squares (Hu, Koren & Volinsky 2008).
* :class:`EASECandidates`: closed-form shallow autoencoder (Steck 2019).
* :class:`ItemKNNCandidates`: item-item cosine neighbourhoods.
* :class:`UnionCandidates`: merges several generators into one candidate frame whose
  per-source scores and ranks are features for the second-stage ranker.

Users absent from training get an empty recommendation, never an exception.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import implicit.cpu.als
import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

__all__ = [
    "ALSCandidates",
    "CandidateGenerator",
    "EASECandidates",
    "InteractionMatrix",
    "ItemKNNCandidates",
    "PopularityCandidates",
    "Recommendations",
    "UnionCandidates",
    "recency_weighted",
]

Recommendations = dict[str, tuple[list[str], np.ndarray]]
"""``user_id -> (item ids, scores)``, best first; scores are float32, higher is better."""

_SCORE_BUDGET = 2**24
"""Dense scores materialised per batch (64 MiB of float32)."""


class InteractionMatrix:
    """Sparse user x item matrix with the string-id <-> row/column index maps.

    Parameters
    ----------
    user_ids, item_ids
        Ids of the rows and columns, unique, in index order.
    matrix
        ``(len(user_ids), len(item_ids))`` CSR matrix of float32 weights; a user-item pair
        that occurs several times holds the sum of its weights.
    """

    def __init__(self, user_ids: Sequence[str], item_ids: Sequence[str], matrix: sp.csr_matrix):
        self.user_ids = np.asarray(user_ids, dtype=str)
        self.item_ids = np.asarray(item_ids, dtype=str)
        if matrix.shape != (self.user_ids.size, self.item_ids.size):
            raise ValueError(f"matrix shape {matrix.shape} does not match the id lists")
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self._user_index = {user: i for i, user in enumerate(self.user_ids.tolist())}
        self._item_index = {item: i for i, item in enumerate(self.item_ids.tolist())}
        if len(self._user_index) != self.user_ids.size or len(self._item_index) != self.n_items:
            raise ValueError("user and item ids must be unique")

    @classmethod
    def from_frame(cls, interactions: pd.DataFrame) -> InteractionMatrix:
        """Build from an interaction frame; ids are sorted, missing ``weight`` means 1."""
        missing = {"user_id", "item_id"} - set(interactions.columns)
        if missing:
            raise ValueError(f"interactions lack columns {sorted(missing)}")
        if interactions.empty:
            raise ValueError("interactions are empty")
        users, user_ids = pd.factorize(interactions["user_id"].astype(str), sort=True)
        items, item_ids = pd.factorize(interactions["item_id"].astype(str), sort=True)
        if "weight" in interactions.columns:
            weights = interactions["weight"].to_numpy(dtype=np.float32)
            if not np.isfinite(weights).all():
                raise ValueError("weights must be finite")
        else:
            weights = np.ones(len(interactions), dtype=np.float32)
        shape = (len(user_ids), len(item_ids))
        matrix = sp.csr_matrix((weights, (users, items)), shape=shape, dtype=np.float32)
        matrix.sum_duplicates()
        return cls(user_ids.to_numpy(), item_ids.to_numpy(), matrix)

    @property
    def n_users(self) -> int:
        return int(self.user_ids.size)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    def user_indices(self, user_ids: Sequence[str]) -> np.ndarray:
        """Row index of each user, -1 for users not in the matrix."""
        return np.fromiter((self._user_index.get(u, -1) for u in user_ids), np.int64, len(user_ids))

    def item_indices(self, item_ids: Sequence[str]) -> np.ndarray:
        """Column index of each item, -1 for items not in the matrix."""
        return np.fromiter((self._item_index.get(i, -1) for i in item_ids), np.int64, len(item_ids))

    def seen(self, user_id: str) -> set[str]:
        """Items the user interacted with in training (empty for an unknown user)."""
        row = self._user_index.get(user_id)
        if row is None:
            return set()
        start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        return set(self.item_ids[self.matrix.indices[start:end]].tolist())

    def item_popularity(self) -> dict[str, float]:
        """Sum of weights per item (interaction counts when unweighted)."""
        totals = np.asarray(self.matrix.sum(axis=0)).ravel()
        return dict(zip(self.item_ids.tolist(), totals.astype(float).tolist(), strict=True))

    def save(self, path: Path) -> None:
        """Write ``interactions.npz`` (CSR arrays) and ``ids.json`` into directory ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        m = self.matrix
        np.savez(
            path / "interactions.npz",
            data=m.data,
            indices=m.indices,
            indptr=m.indptr,
            shape=np.asarray(m.shape),
        )
        ids = {"user_ids": self.user_ids.tolist(), "item_ids": self.item_ids.tolist()}
        (path / "ids.json").write_text(json.dumps(ids))

    @classmethod
    def load(cls, path: Path) -> InteractionMatrix:
        """Read what :meth:`save` wrote."""
        ids = json.loads((path / "ids.json").read_text())
        with np.load(path / "interactions.npz", allow_pickle=False) as arrays:
            matrix = sp.csr_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]),
                shape=tuple(arrays["shape"].tolist()),
            )
        return cls(ids["user_ids"], ids["item_ids"], matrix)


def _top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``n`` largest scores per row, best first.

    Equal scores within the list are ordered by column index; which of several items tied at
    the cut-off is kept is deterministic but unspecified. Entries equal to ``-inf`` are
    excluded items; callers drop them.
    """
    n = min(n, scores.shape[1])
    if n < scores.shape[1]:
        cols = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        cols = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    values = np.take_along_axis(scores, cols, axis=1)
    order = np.lexsort((cols, -values), axis=1)
    return np.take_along_axis(cols, order, axis=1), np.take_along_axis(values, order, axis=1)


def top_n_of_row(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_top_n` of one row of scores (1-D), without its ``-inf`` (excluded) entries.

    The same items in the same order as ``_top_n(scores[None, :], n)`` (the same partition
    picks the same items at a tie on the cut-off), at a third of the cost for one row: the
    request path ranks one user at a time.
    """
    n = min(n, len(scores))
    if n < len(scores):
        cols = np.argpartition(-scores, n - 1)[:n]
        cols.sort()  # ties then stay in column order through the stable sort below
    else:
        cols = np.arange(len(scores))
    cols = cols[np.argsort(-scores[cols], kind="stable")]
    values = scores[cols]
    keep = values > -np.inf
    return cols[keep], values[keep]


class CandidateGenerator(ABC):
    """Common interface and persistence of the candidate generators.

    Subclasses implement :meth:`_fit` and :meth:`_scores` (dense scores of all items for a
    batch of known users), :meth:`_params`, and :meth:`_save_state`/:meth:`_load_state` for
    their learned arrays; :meth:`recommend` is shared.

    Attributes
    ----------
    name
        Short identifier, used as the feature prefix in :class:`UnionCandidates`.
    """

    name: str
    _registry: ClassVar[dict[str, type[CandidateGenerator]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        CandidateGenerator._registry[cls.__name__] = cls

    def __init__(self, name: str):
        self.name = name
        self._interactions: InteractionMatrix | None = None

    @property
    def interactions(self) -> InteractionMatrix:
        """The training matrix; raises if the generator is not fitted."""
        if self._interactions is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r} is not fitted")
        return self._interactions

    def fit(self, interactions: pd.DataFrame) -> Self:
        """Learn from an interaction frame; returns ``self``."""
        self._interactions = InteractionMatrix.from_frame(interactions)
        logger.info(
            "fitting %s on %d users x %d items (%d nonzeros)",
            self.name,
            self._interactions.n_users,
            self._interactions.n_items,
            self._interactions.matrix.nnz,
        )
        self._fit(interactions, self._interactions)
        return self

    @abstractmethod
    def _fit(self, frame: pd.DataFrame, matrix: InteractionMatrix) -> None: ...

    @abstractmethod
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense float32 ``(len(rows), n_items)`` scores of the known users at ``rows``."""

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """Constructor keyword arguments, JSON-serialisable."""

    @abstractmethod
    def _save_state(self, path: Path) -> None: ...

    @abstractmethod
    def _load_state(self, path: Path) -> None: ...

    def recommend(
        self, user_ids: Sequence[str], n: int, exclude_seen: bool = True
    ) -> Recommendations:
        """Top ``n`` items per user over the whole catalogue, best first.

        Parameters
        ----------
        user_ids
            Users to recommend for; unknown users get empty lists.
        n
            Maximum list length (shorter when fewer items are eligible).
        exclude_seen
            Drop the items each user interacted with in training.
        """
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        user_ids = list(user_ids)
        matrix = self.interactions
        rows = matrix.user_indices(user_ids)
        result: Recommendations = {u: ([], np.empty(0, np.float32)) for u in user_ids}
        known = np.flatnonzero(rows >= 0)
        batch = max(1, _SCORE_BUDGET // max(matrix.n_items, 1))
        for start in range(0, known.size, batch):
            chunk = known[start : start + batch]
            scores = self._scores(rows[chunk]).astype(np.float32, copy=False)
            if exclude_seen:
                seen = matrix.matrix[rows[chunk]].tocoo()
                scores[seen.row, seen.col] = -np.inf
            cols, values = _top_n(scores, n)
            for offset, pos in enumerate(chunk.tolist()):
                keep = values[offset] > -np.inf
                items = matrix.item_ids[cols[offset][keep]].tolist()
                result[user_ids[pos]] = (items, values[offset][keep])
        return result

    def save(self, path: Path) -> None:
        """Write the fitted generator into directory ``path``."""
        path = Path(path)
        self.interactions.save(path)
        meta = {"class": type(self).__name__, "name": self.name, "params": self._params()}
        (path / "meta.json").write_text(json.dumps(meta, indent=2))
        self._save_state(path)

    @classmethod
    def load(cls, path: Path) -> CandidateGenerator:
        """Read a generator written by :meth:`save`; the base class dispatches on ``meta.json``."""
        path = Path(path)
        meta = json.loads((path / "meta.json").read_text())
        target = CandidateGenerator._registry.get(meta["class"])
        if target is None or not issubclass(target, cls):
            raise TypeError(f"{path} holds a {meta['class']}, not a {cls.__name__}")
        generator = target(name=meta["name"], **meta["params"])
        generator._interactions = InteractionMatrix.load(path)
        generator._load_state(path)
        return generator


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

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        if self._popularity is None:
            raise RuntimeError("popularity is not fitted")
        return np.tile(self._popularity, (rows.size, 1))

    def ranking(self, n: int) -> list[str]:
        """The ``n`` most popular items overall, best first (the fallback list)."""
        if self._popularity is None:
            raise RuntimeError("popularity is not fitted")
        order = np.argsort(-self._popularity, kind="stable")[:n]
        return self.interactions.item_ids[order].tolist()

    def _params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days}

    def _save_state(self, path: Path) -> None:
        np.savez(path / "popularity.npz", popularity=self._popularity)

    def _load_state(self, path: Path) -> None:
        with np.load(path / "popularity.npz", allow_pickle=False) as arrays:
            self._popularity = arrays["popularity"]


def _available_cpus() -> int:
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
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
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
                num_threads=self.num_threads or _available_cpus(),
            )
            model.fit(matrix.matrix, show_progress=False)
        self._model = model

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.model.user_factors[rows] @ self.model.item_factors.T

    def recommend(
        self, user_ids: Sequence[str], n: int, exclude_seen: bool = True
    ) -> Recommendations:
        """Top ``n`` items per user via ``implicit``'s batched ``recommend``."""
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        user_ids = list(user_ids)
        matrix = self.interactions
        rows = matrix.user_indices(user_ids)
        result: Recommendations = {u: ([], np.empty(0, np.float32)) for u in user_ids}
        known = np.flatnonzero(rows >= 0)
        batch = max(1, _SCORE_BUDGET // matrix.n_items)
        floor = np.finfo(np.float32).min
        for start in range(0, known.size, batch):
            chunk = known[start : start + batch]
            ids, scores = self.model.recommend(
                rows[chunk],
                matrix.matrix[rows[chunk]],
                N=min(n, matrix.n_items),
                filter_already_liked_items=exclude_seen,
            )
            for offset, pos in enumerate(chunk.tolist()):
                keep = (ids[offset] >= 0) & (scores[offset] > floor)
                result[user_ids[pos]] = (
                    matrix.item_ids[ids[offset][keep]].tolist(),
                    scores[offset][keep],
                )
        return result

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
        model.num_threads = self.num_threads or _available_cpus()
        self._model = model


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


class _ItemToItemCandidates(CandidateGenerator):
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

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        history = self._history if self._history is not None else self.interactions.matrix
        out = history[rows] @ self.weights
        return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float32)

    def recommend_from_items(self, item_ids: Sequence[str], n: int) -> tuple[list[str], np.ndarray]:
        """Top ``n`` items for an anonymous history ("because you watched X").

        Unknown ids are ignored; the given items are excluded from the result.
        """
        cols = self.interactions.item_indices(list(item_ids))
        cols = np.unique(cols[cols >= 0])
        if cols.size == 0 or n < 1:
            return [], np.empty(0, np.float32)
        weights = self.weights
        summed = weights[cols].sum(axis=0)
        scores = np.asarray(summed, dtype=np.float32).reshape(1, -1)
        scores[0, cols] = -np.inf
        top, values = _top_n(scores, n)
        keep = values[0] > -np.inf
        return self.interactions.item_ids[top[0][keep]].tolist(), values[0][keep]

    def _save_state(self, path: Path) -> None:
        if self._history is not None:
            h = self._history
            np.savez(path / "history.npz", data=h.data, indices=h.indices, indptr=h.indptr)
        w = self.weights
        if sp.issparse(w):
            np.savez(
                path / "item_weights.npz",
                data=w.data,
                indices=w.indices,
                indptr=w.indptr,
                shape=np.asarray(w.shape),
            )
        else:
            np.savez(path / "item_weights.npz", dense=w)

    def _load_state(self, path: Path) -> None:
        if (path / "history.npz").is_file():
            with np.load(path / "history.npz", allow_pickle=False) as a:
                shape = self.interactions.matrix.shape
                self._history = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=shape)
        with np.load(path / "item_weights.npz", allow_pickle=False) as a:
            if "dense" in a:
                self._weights = a["dense"]
            else:
                shape = tuple(a["shape"].tolist())
                self._weights = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=shape)


class EASECandidates(_ItemToItemCandidates):
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
    """

    def __init__(
        self, l2: float = 500.0, max_items: int = 20_000, half_life_events: float | None = None,
        name: str = "ease",
    ):
        super().__init__(name, half_life_events)
        if not l2 > 0:
            raise ValueError(f"l2 must be positive, got {l2}")
        self.l2 = l2
        self.max_items = max_items

    def _fit(self, frame: pd.DataFrame, matrix: InteractionMatrix) -> None:
        if matrix.n_items > self.max_items:
            raise ValueError(f"EASE on {matrix.n_items} items exceeds max_items={self.max_items}")
        x = matrix.matrix
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)
        np.fill_diagonal(weights, 0.0)
        self._weights = weights.astype(np.float32)

    def _params(self) -> dict[str, Any]:
        return {
            "l2": self.l2, "max_items": self.max_items, "half_life_events": self.half_life_events
        }


class ItemKNNCandidates(_ItemToItemCandidates):
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


class UnionCandidates:
    """Merged candidates of several generators, with per-source features.

    Parameters
    ----------
    generators
        Generators with unique ``name``; fitted here by :meth:`fit` or beforehand.
    n_per_generator
        List length asked of each generator.
    """

    def __init__(self, generators: Sequence[CandidateGenerator], n_per_generator: int):
        names = [g.name for g in generators]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"generator names must be unique and non-empty, got {names}")
        if n_per_generator < 1:
            raise ValueError(f"n_per_generator must be positive, got {n_per_generator}")
        self.generators = list(generators)
        self.n_per_generator = n_per_generator

    def fit(self, interactions: pd.DataFrame) -> Self:
        """Fit every generator on the same interactions; returns ``self``."""
        for generator in self.generators:
            generator.fit(interactions)
        return self

    def candidates(self, user_ids: Sequence[str], exclude_seen: bool = True) -> pd.DataFrame:
        """One row per distinct (user, candidate item) across the generators.

        Returns
        -------
        pandas.DataFrame
            ``user_id``, ``item_id`` and, per generator, ``<name>_score`` (float, NaN when
            the generator did not retrieve the item) and ``<name>_rank`` (1-based int,
            ``n_per_generator + 1`` when absent). Rows are sorted by user, then by the best
            rank over generators, then by item id.
        """
        frames = [self._retrieve(g, user_ids, exclude_seen) for g in self.generators]
        merged = frames[0]
        for frame in frames[1:]:
            merged = merged.merge(frame, on=["user_id", "item_id"], how="outer")
        rank_cols = [f"{g.name}_rank" for g in self.generators]
        merged[rank_cols] = merged[rank_cols].fillna(self.n_per_generator + 1).astype(np.int64)
        merged["_best"] = merged[rank_cols].min(axis=1)
        merged = merged.sort_values(["user_id", "_best", "item_id"], kind="stable")
        return merged.drop(columns="_best").reset_index(drop=True)

    def _retrieve(
        self, generator: CandidateGenerator, user_ids: Sequence[str], exclude_seen: bool
    ) -> pd.DataFrame:
        """One generator's lists as long rows: user, item, score and 1-based rank."""
        recs = generator.recommend(user_ids, self.n_per_generator, exclude_seen)
        lengths = [len(items) for items, _ in recs.values()]
        scores = [np.asarray(s, np.float64) for _, s in recs.values()]
        ranks = [np.arange(1, m + 1) for m in lengths]
        return pd.DataFrame(
            {
                "user_id": np.repeat(np.asarray(list(recs), dtype=object), lengths),
                "item_id": [item for items, _ in recs.values() for item in items],
                f"{generator.name}_score": np.concatenate(scores or [np.empty(0)]),
                f"{generator.name}_rank": np.concatenate(ranks or [np.empty(0, np.int64)]),
            }
        )

    def save(self, path: Path) -> None:
        """Write each generator into ``path/<name>`` and the layout into ``union.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for generator in self.generators:
            generator.save(path / generator.name)
        names = [g.name for g in self.generators]
        layout = {"n_per_generator": self.n_per_generator, "generators": names}
        (path / "union.json").write_text(json.dumps(layout, indent=2))

    @classmethod
    def load(cls, path: Path) -> UnionCandidates:
        """Read what :meth:`save` wrote."""
        path = Path(path)
        layout = json.loads((path / "union.json").read_text())
        generators = [CandidateGenerator.load(path / name) for name in layout["generators"]]
        return cls(generators, layout["n_per_generator"])

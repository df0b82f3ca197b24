"""The user x item interaction matrix every candidate generator is fitted on."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


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
        save_csr(path / "interactions.npz", self.matrix)
        ids = {"user_ids": self.user_ids.tolist(), "item_ids": self.item_ids.tolist()}
        (path / "ids.json").write_text(json.dumps(ids))

    @classmethod
    def load(cls, path: Path) -> InteractionMatrix:
        """Read what :meth:`save` wrote."""
        ids = json.loads((path / "ids.json").read_text())
        with np.load(path / "interactions.npz", allow_pickle=False) as arrays:
            matrix = csr_of(arrays)
        return cls(ids["user_ids"], ids["item_ids"], matrix)


def save_csr(file: Path, matrix: sp.csr_matrix) -> None:
    """Write a CSR matrix's arrays and shape into an ``.npz`` file (no pickle)."""
    np.savez(file, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr,
             shape=np.asarray(matrix.shape))


def csr_of(arrays: Mapping[str, np.ndarray],
           shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    """The CSR matrix of :func:`save_csr`'s arrays (``shape`` for files written without it)."""
    if "shape" in arrays:
        shape = tuple(arrays["shape"].tolist())  # type: ignore[assignment]
    return sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)


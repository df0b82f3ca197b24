"""First stage for one user: each generator's top items, merged, as arrays (no DataFrames).

The values equal those of :meth:`training.candidates.UnionCandidates.candidates` (the
columns the ranker was trained on: ``<generator>_score``, NaN when the generator did not
retrieve the item, and ``<generator>_rank``, ``n_per_generator + 1`` when absent), computed
through each generator's dense scoring contract for a single user; ALS searches an
:mod:`serving.item_index` (exact, or faiss IVF for large catalogs) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.item_index import ItemIndex, build_index
from serving.items import ItemTable
from training.candidates import (
    ALSCandidates,
    CandidateGenerator,
    UnionCandidates,
    top_n_of_row,
)


@dataclass(frozen=True)
class Candidates:
    """A user's merged candidates: catalog rows and per-generator columns by name."""

    rows: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> Candidates:
        return Candidates(self.rows[keep], {k: v[keep] for k, v in self.columns.items()})


class CandidateRetriever:
    """Retrieves candidates of one user from the fitted generators of a union.

    Parameters
    ----------
    union
        The recommender's fitted candidate generators (all share one training matrix).
    items
        The catalog rows the candidates are mapped to; items outside it are dropped.
    approximate_from
        Catalog size from which ALS searches a faiss IVF index instead of every item.
    """

    def __init__(self, union: UnionCandidates, items: ItemTable,
                 approximate_from: int = 100_000):
        self.union = union
        self.n = union.n_per_generator
        self._maps = []
        self._indexes: dict[str, ItemIndex] = {}
        for generator in union.generators:
            ids = generator.interactions.item_ids
            self._maps.append(items.positions([str(i) for i in ids]))
            if isinstance(generator, ALSCandidates):
                self._indexes[generator.name] = build_index(generator.model.item_factors,
                                                            approximate_from)

    def knows(self, user_id: str) -> bool:
        return self.union.generators[0].interactions.user_indices([user_id])[0] >= 0

    def retrieve(self, user_id: str) -> Candidates:
        """Top ``n_per_generator`` unseen items of each generator; empty for unknown users."""
        per_generator: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = []
        for generator, to_row in zip(self.union.generators, self._maps, strict=True):
            user = generator.interactions.user_indices([user_id])[0]
            if user < 0:
                per_generator.append(None)
                continue
            per_generator.append(self._rows(to_row, *self._top(generator, user)))
        return self._merge(per_generator)

    def retrieve_session(self, item_ids: list[str]) -> Candidates:
        """Candidates for a user the model never saw, from the items of their session.

        Item-to-item generators score from those items (``sum of W[i]``), popularity ranks
        as for anyone, generators of users (ALS) retrieve nothing, so their columns hold
        what training gives an item they did not retrieve. The session items are excluded;
        the result is empty when no item-to-item generator knows any of them.
        """
        per_generator: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = []
        from_items = False
        for generator, to_row in zip(self.union.generators, self._maps, strict=True):
            cols = generator.interactions.item_indices(item_ids)
            cols = np.unique(cols[cols >= 0])
            weights = getattr(generator, "weights", None)
            if generator.name in self._indexes or (weights is not None and cols.size == 0):
                per_generator.append(None)
                continue
            if weights is not None:
                from_items = True
                scores = np.asarray(weights[cols].sum(axis=0), dtype=np.float32).reshape(1, -1)
            else:
                scores = generator._scores(np.zeros(1, np.int64)).astype(np.float32)
            scores[0, cols] = -np.inf
            per_generator.append(self._rows(to_row, *top_n_of_row(scores[0], self.n)))
        return self._merge(per_generator if from_items else [])

    @staticmethod
    def _rows(to_row: np.ndarray, cols: np.ndarray,
              values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Catalog rows, scores and 1-based ranks of a generator's list (items outside the
        catalog dropped after ranking)."""
        rows = to_row[cols]
        ranks = np.arange(1, len(rows) + 1)
        in_catalog = rows >= 0
        return rows[in_catalog], values[in_catalog], ranks[in_catalog]

    def _merge(
        self, per_generator: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None]
    ) -> Candidates:
        """The union of the generators' lists with a score and rank column per generator."""
        lists = [found for found in per_generator if found is not None]
        if not lists:
            return Candidates(np.empty(0, np.int64), {})
        union = np.unique(np.concatenate([rows for rows, _, _ in lists]))
        columns: dict[str, np.ndarray] = {}
        for generator, found in zip(self.union.generators, per_generator, strict=True):
            score = np.full(len(union), np.nan, dtype=np.float64)
            rank = np.full(len(union), self.n + 1, dtype=np.float64)
            if found is not None:
                rows, values, ranks = found
                at = np.searchsorted(union, rows)
                score[at] = values
                rank[at] = ranks
            columns[f"{generator.name}_score"] = score
            columns[f"{generator.name}_rank"] = rank
        return Candidates(union, columns)

    def _top(self, generator: CandidateGenerator, user: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns and scores of the generator's top ``n`` items unseen by row ``user``."""
        csr = generator.interactions.matrix
        seen = csr.indices[csr.indptr[user]:csr.indptr[user + 1]]
        index = self._indexes.get(generator.name)
        if index is not None:
            model = generator.model  # type: ignore[attr-defined]
            return index.search(model.user_factors[user], self.n, seen)
        weights = getattr(generator, "weights", None)
        if isinstance(weights, np.ndarray):  # dense item-to-item: x_u @ W over seen rows
            values = csr.data[csr.indptr[user]:csr.indptr[user + 1]]
            scores = values.astype(np.float32) @ weights[seen]
        else:
            scores = generator._scores(np.array([user]))[0].astype(np.float32, copy=True)
        scores[seen] = -np.inf
        return top_n_of_row(scores, self.n)

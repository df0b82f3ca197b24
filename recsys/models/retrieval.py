"""The first stage for one user on the request path: each generator's top items, merged, as
arrays keyed by catalog row (no DataFrames).

The columns equal those of :meth:`~recsys.models.union.UnionCandidates.candidates` for the
same user (one merge, :func:`~recsys.models.union.merge_lists`); each generator answers
through its one-user methods (:meth:`~recsys.models.generator.CandidateGenerator.top_for_user`,
:meth:`~recsys.models.generator.CandidateGenerator.top_for_items`), ALS from an item index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.features.item_table import ItemTable
from recsys.models.als import ALSCandidates
from recsys.models.generator import CandidateGenerator
from recsys.models.item_to_item import ItemToItemCandidates
from recsys.models.union import GeneratorList, UnionCandidates, merge_lists


@dataclass(frozen=True)
class Candidates:
    """A user's merged candidates: catalog rows and per-generator columns by name.

    ``table``, when given, holds the columns as the rows of one ``(len(columns), len(rows))``
    float64 array in the order of ``columns`` (each column a view of it): a subset then takes
    one array operation and the ranker's inputs copy them in one (a decoded block has it).
    """

    rows: np.ndarray
    columns: dict[str, np.ndarray]
    table: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> Candidates:
        if self.table is not None:  # compress and take: faster than indexing, the same values
            table = (self.table.compress(keep, axis=1) if keep.dtype == bool
                     else self.table.take(keep, axis=1))
            return Candidates(self.rows[keep], dict(zip(self.columns, table, strict=True)),
                              table)
        return Candidates(self.rows[keep], {k: v[keep] for k, v in self.columns.items()})

    def stacked(self) -> np.ndarray:
        """:attr:`table`, stacked from the columns when it was not given."""
        if self.table is not None:
            return self.table
        if not self.columns:
            return np.empty((0, len(self.rows)))
        return np.stack(list(self.columns.values()))

    def merged_with(self, fresh: Candidates) -> Candidates:
        """These candidates and the rows of ``fresh`` they lack (a session's, retrieved
        after these were computed): each row keeps the columns of the list it came from."""
        if not len(fresh):
            return self
        new = ~np.isin(fresh.rows, self.rows)
        if not new.any():
            return self
        rows = np.concatenate([self.rows, fresh.rows[new]])
        order = np.argsort(rows, kind="stable")
        if self.table is not None:
            added = np.stack([fresh.columns[k][new] for k in self.columns])
            table = np.concatenate([self.table, added], axis=1)[:, order]
            return Candidates(rows[order], dict(zip(self.columns, table, strict=True)), table)
        return Candidates(rows[order], {
            k: np.concatenate([v, fresh.columns[k][new]])[order] for k, v in self.columns.items()
        })


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
        self._maps = [items.positions([str(i) for i in g.interactions.item_ids])
                      for g in union.generators]
        for generator in union.generators:
            if isinstance(generator, ALSCandidates):
                generator.use_index(approximate_from)

    def knows(self, user_id: str) -> bool:
        return self.union.generators[0].user_row(user_id) >= 0

    def retrieve(self, user_id: str) -> Candidates:
        """Top ``n_per_generator`` unseen items of each generator; empty for unknown users."""
        lists: list[GeneratorList | None] = []
        for generator, to_row in zip(self.union.generators, self._maps, strict=True):
            row = generator.user_row(user_id)
            lists.append(None if row < 0 else _rows(to_row, *generator.top_for_user(row, self.n)))
        return self._merge(lists)

    def retrieve_session(self, item_ids: list[str]) -> Candidates:
        """Candidates for a user the model never saw, from the items of their session.

        Item-to-item generators score from those items, popularity ranks as for anyone,
        generators of users (ALS) retrieve nothing, so their columns hold what training
        gives an item they did not retrieve. The session items are excluded; the result is
        empty when no item-to-item generator knows any of them.
        """
        lists: list[GeneratorList | None] = []
        personal = False
        for generator, to_row in zip(self.union.generators, self._maps, strict=True):
            cols = generator.interactions.item_indices(item_ids)
            cols = np.unique(cols[cols >= 0])
            found = _session_list(generator, cols, self.n)
            personal |= found is not None and isinstance(generator, ItemToItemCandidates)
            lists.append(None if found is None else _rows(to_row, *found))
        return self._merge(lists if personal else [])

    def _merge(self, lists: list[GeneratorList | None]) -> Candidates:
        if not any(entry is not None for entry in lists):
            return Candidates(np.empty(0, np.int64), {})
        rows, columns = merge_lists(self.union.names, lists, self.n)
        return Candidates(rows, columns)


def _session_list(generator: CandidateGenerator, cols: np.ndarray,
                  n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A generator's list for a session; None when it cannot say anything about one (an
    item-to-item generator that knows none of the items)."""
    if isinstance(generator, ItemToItemCandidates) and cols.size == 0:
        return None
    return generator.top_for_items(cols, n)


def _rows(to_row: np.ndarray, cols: np.ndarray, values: np.ndarray) -> GeneratorList:
    """Catalog rows, scores and 1-based ranks of a generator's list (items outside the
    catalog dropped after ranking)."""
    rows = to_row[cols]
    ranks = np.arange(1, len(rows) + 1)
    in_catalog = rows >= 0
    return rows[in_catalog], values[in_catalog], ranks[in_catalog]

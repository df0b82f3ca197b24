"""Why an item is recommended, taken from what drove its score.

A reason names, in this order of preference:

1. the **seed item** of an item-to-item candidate (one the item-to-item generator ranked
   above every other personal generator): the item of the user's history (or of their
   session) that contributes most to its score ``x_u @ W`` (the largest ``x_u[h] * W[h, j]``;
   one of the candidate's main category among those contributing at least ``SEED_SHARE`` of
   the largest);
2. else the **history item most similar** to the candidate in the model's space (cosine of
   the ALS item factors; the user's recent items first, then the rest of what they saw),
   among the history items sharing one of the candidate's categories when any is similar at
   all: ALS and the ranker's ``recent_sim_*`` features score an item by that closeness, and
   its ``category_match`` by the shared category;
3. for a **new item** (one only the content generator proposed, without behaviour to
   compare), that it is new, in the item's category the user likes most;
4. the **category affinity** the ranker reads (``category_match``): the item's category the
   user likes most;
5. else the item's popularity.

:class:`ReasonFinder` answers for one user's listed items on the request path; it reads only
the fitted generators and the in-process :class:`~recsys.features.item_table.ItemTable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from recsys.features.item_table import ItemTable
from recsys.models.exploration import new_candidates
from recsys.models.item_to_item import ItemToItemCandidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.union import UnionCandidates

SEED_ITEM = "seed_item"
SIMILAR_ITEM = "similar_item"
NEW_ITEM = "new_item"
CATEGORY = "category"
POPULAR = "popular"

#: A history item contributing at least this share of the largest contribution to an
#: item-to-item candidate's score may be named as its seed in place of the largest.
SEED_SHARE = 0.5


class Reason(NamedTuple):
    """One item's reason: the sentence, its kind and the item or category it names (a named
    tuple: ten are made per request)."""

    text: str
    kind: str
    item_id: str | None = None
    category: str | None = None


class ReasonFinder:
    """Reasons for one user's recommended items.

    Parameters
    ----------
    union
        The recommender's fitted generators; the first item-to-item one gives seed items.
    items
        The catalog rows the candidates index, with the ALS item vectors.
    """

    def __init__(self, union: UnionCandidates, items: ItemTable):
        self.items = items
        self.item2item = next((g for g in union.generators
                               if isinstance(g, ItemToItemCandidates)), None)
        # the generator's column of each catalog row (-1: the generator never saw the item)
        self._column = np.full(len(items), -1, dtype=np.int64)
        # and the reverse: the catalog row of each of the generator's columns (-1: none)
        self._row = np.empty(0, dtype=np.int64)
        if self.item2item is not None:
            rows = items.positions([str(i) for i in self.item2item.interactions.item_ids])
            known = rows >= 0
            self._column[rows[known]] = np.flatnonzero(known)
            self._row = rows
        # the category vocabulary of the affinity features (sorted names of the catalog's)
        vocab = sorted({c for cats in items.categories for c in cats})
        self._category_index = {name: i for i, name in enumerate(vocab)}
        # each row's main (first) category in that vocabulary, -1 for none
        self._primary = np.array([self._category_index.get(c, -1) if c else -1
                                  for c in items.primary_category], dtype=np.int64)
        # the main category of each of the generator's columns (-1: none, or no catalog row)
        self._column_primary = np.where(self._row >= 0, self._primary[self._row], -1)
        # the personal generators an item-to-item candidate must outrank to be its reason
        self._rivals = [g.name for g in union.generators
                        if g is not self.item2item and not isinstance(g, PopularityCandidates)]
        # a named item's id and sentence, made once per item named
        self._ids = [str(i) for i in items.ids.tolist()]
        self._because: dict[int, str] = {}

    def explain(self, user_id: str, rows: np.ndarray, columns: Mapping[str, np.ndarray],
                history: Sequence[str], affinity: object,
                history_rows: np.ndarray | None = None) -> list[Reason]:
        """A :class:`Reason` per catalog row of ``rows``.

        ``columns`` are the candidates' generator columns aligned with ``rows`` (``<name>_rank``
        and ``<name>_score``, NaN where the generator did not retrieve the item); ``history``
        the user's items, most recent first (a session's items for a user the model never
        saw), ``history_rows`` their catalog rows when the caller has them (-1: not in the
        catalog); ``affinity`` the user's category affinity (Feast's ``category_affinity``,
        None when unknown).
        """
        items = self.items
        # seeds only of the candidates the item-to-item generator led (the others have none)
        led = self._item_to_item_led(columns, len(rows))
        seeds = self._seeds(user_id, rows, columns, history, led)  # history: a session, if new
        similar = self.similar_items(rows, history, history_rows)
        named = np.where(seeds >= 0, seeds, similar).tolist()
        seeded = (seeds >= 0).tolist()
        new: list[bool] | None = None
        aff: list[float] | None = None
        out = []
        for i, row in enumerate(rows.tolist()):
            k = named[i]
            if k >= 0:
                out.append(Reason(self._because.get(k) or self._sentence(k),
                                  SEED_ITEM if seeded[i] else SIMILAR_ITEM, self._ids[k]))
                continue
            if new is None:  # what the items without a named one need, worked out once
                new = (new_candidates(columns, len(rows)) & ~items.has_vector[rows]).tolist()
                aff = (None if affinity is None
                       else np.asarray(affinity, dtype=np.float64).tolist())
            liked = self._liked(row, aff)
            if new[i]:
                category = liked or items.primary_category[row]
                out.append(Reason(f"new in {category}" if category else "new", NEW_ITEM,
                                  category=category))
            elif liked is not None:
                out.append(Reason(f"matches your interest in {liked}", CATEGORY, category=liked))
            elif items.primary_category[row]:
                category = items.primary_category[row]
                out.append(Reason(f"popular in {category}", POPULAR, category=category))
            else:
                out.append(Reason("popular right now", POPULAR))
        return out

    def _sentence(self, row: int) -> str:
        """"because you interacted with" the item of catalog ``row`` (kept for the next time)."""
        title = self.items.titles[row] or self._ids[row]
        sentence = self._because[row] = f"because you interacted with {title}"
        return sentence

    def seed_items(self, user_id: str, rows: np.ndarray, columns: Mapping[str, np.ndarray],
                   session: Sequence[str]) -> np.ndarray:
        """Catalog row of each candidate's seed item (-1 when the item-to-item generator did
        not retrieve it or nothing of the history raises its score); ``session`` holds the
        items of a user the generator never saw."""
        generator = self.item2item
        score = columns.get(f"{generator.name}_score") if generator is not None else None
        retrieved = (np.zeros(len(rows), dtype=bool) if score is None
                     else ~np.isnan(score))
        return self._seeds(user_id, rows, columns, session, retrieved)

    def _seeds(self, user_id: str, rows: np.ndarray, columns: Mapping[str, np.ndarray],
               session: Sequence[str], asked: np.ndarray) -> np.ndarray:
        """:meth:`seed_items` of the candidates ``asked`` (a mask; -1 for the others)."""
        out = np.full(len(rows), -1, dtype=np.int64)
        generator = self.item2item
        if generator is None or not len(rows):
            return out
        targets = self._column[rows]
        retrieved = (asked & (targets >= 0)).nonzero()[0]
        if not retrieved.size:
            return out
        history, weights = self._history(generator, user_id, session)
        if not history.size:
            return out
        if sp.issparse(generator.weights):
            block = generator.weights[history][:, targets[retrieved]].toarray()
        else:  # one gather of the block (the same values as two)
            block = generator.weights[history[:, None], targets[retrieved][None, :]]
        contribution = weights[:, None] * block
        top = np.maximum.reduce(contribution, axis=0)
        lifts = top > 0
        # among the items contributing at least half the largest share, one of the
        # candidate's main category (the taste it answers), else the largest contributor
        primary = self._primary[rows[retrieved]]
        main = (self._column_primary[history][:, None] == primary[None, :]) & (primary >= 0)
        strong = contribution >= SEED_SHARE * top
        best = np.where(contribution > 0, contribution, 0.0)
        best = np.where(main & strong, best + top, best).argmax(axis=0)
        seed_rows = self._row[history[best]]
        out[retrieved[lifts]] = seed_rows[lifts]
        out[out == rows] = -1  # never "because of itself"
        return out

    def similar_items(self, rows: np.ndarray, history: Sequence[str],
                      history_rows: np.ndarray | None = None) -> np.ndarray:
        """Catalog row of the history item most similar to each candidate in the ALS space,
        the earliest in ``history`` among equals (-1 without an embedding on either side or
        when none is similar at all); ``history_rows`` are the catalog rows of ``history``
        when the caller has them."""
        items = self.items
        out = np.full(len(rows), -1, dtype=np.int64)
        history = items.positions(list(history)) if history_rows is None else history_rows
        history = history[history >= 0]
        history = history[items.has_vector[history]]
        if not history.size or not len(rows):
            return out
        sims = items.vectors.take(rows, axis=0) @ items.vectors.take(history, axis=0).T
        sims[rows[:, None] == history[None, :]] = -np.inf
        # a similar history item of the candidate's main category ranks above one sharing
        # another of its categories (those ``category_match`` reads), which ranks above the
        # rest: the reason then names the taste the item answers
        if items.category_counts.shape[1]:
            counts = items.category_counts
            shared = (counts.take(rows, axis=0) @ counts.take(history, axis=0).T) > 0
            primary = self._primary[rows]
            main = primary[:, None] == self._primary[history][None, :]
            lift = 2.0 * shared + 2.0 * (main & (primary >= 0)[:, None])
            sims = np.where(sims > 0, sims + lift, sims)
        best = sims.argmax(axis=1)
        ok = items.has_vector[rows] & (sims[np.arange(len(best)), best] > 0)  # the largest
        out[ok] = history[best[ok]]
        return out

    def liked_category(self, row: int, affinity: object) -> str | None:
        """The item's category with the user's highest affinity (None when none is liked)."""
        if affinity is None:
            return None
        return self._liked(row, np.asarray(affinity, dtype=np.float64).tolist())

    def _liked(self, row: int, affinity: list[float] | None) -> str | None:
        """:meth:`liked_category` of an affinity already a list of floats."""
        if affinity is None:
            return None
        best, best_value = None, 0.0
        for name in self.items.categories[row]:
            index = self._category_index.get(name, -1)
            if 0 <= index < len(affinity) and affinity[index] > best_value:
                best, best_value = name, affinity[index]
        return best

    def _item_to_item_led(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Items the item-to-item generator ranked above every rival personal generator."""
        if self.item2item is None or f"{self.item2item.name}_rank" not in columns:
            return np.zeros(n, dtype=bool)
        own = columns[f"{self.item2item.name}_rank"]
        led = ~np.isnan(columns[f"{self.item2item.name}_score"])
        for name in self._rivals:
            if f"{name}_rank" in columns:
                led &= own < columns[f"{name}_rank"]
        return led

    @staticmethod
    def _history(generator: ItemToItemCandidates, user_id: str,
                 session: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Columns and weights of the history the generator scores the user from: their
        training row (recency-decayed as it scores), else the session's items."""
        row = generator.user_row(user_id)
        if row >= 0:
            matrix = generator.history
            start, end = matrix.indptr[row:row + 2].tolist()
            return matrix.indices[start:end], matrix.data[start:end].astype(np.float64)
        cols = generator.interactions.item_indices(list(session))
        cols = np.unique(cols[cols >= 0])
        return cols, np.ones(len(cols))

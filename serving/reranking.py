"""Third stage: the final list from ranker scores: MMR diversity and a per-category cap.

Maximal marginal relevance (Carbonell and Goldstein, 1998) picks, at each step, the
candidate maximising ``(1 - diversity) * relevance - diversity * max_similarity`` to the
items already picked, with relevance the ranker score scaled to [0, 1] and similarity the
cosine of the ALS item factors. ``diversity = 0`` keeps the ranker's order.
"""

from __future__ import annotations

import numpy as np

from recsys.features.item_table import ItemTable


def rerank(
    items: ItemTable,
    rows: np.ndarray,
    scores: np.ndarray,
    n: int,
    diversity: float = 0.0,
    max_per_category: int = 0,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """Positions into ``rows`` of the ``n`` items to show, in display order.

    Parameters
    ----------
    items
        The catalog (primary categories and item vectors).
    rows, scores
        Candidate catalog rows and their ranker scores.
    diversity
        MMR weight in [0, 1].
    max_per_category
        At most this many items sharing a primary category (0: no cap); when the cap leaves
        fewer than ``n`` items the list is shorter.
    order
        ``np.argsort(-scores, kind="stable")`` when the caller has it already.
    """
    if order is None:
        order = np.argsort(-scores, kind="stable")
    if diversity <= 0.0:
        return _cap(items, rows, order, n, max_per_category)
    finite = np.isfinite(scores)
    low, high = (scores[finite].min(), scores[finite].max()) if finite.any() else (0.0, 1.0)
    relevance = np.where(finite, (scores - low) / max(high - low, 1e-9), 0.0)
    vectors = items.vectors.take(rows, axis=0)
    picked: list[int] = []
    per_category: dict[str | None, int] = {}
    available = np.ones(len(rows), dtype=bool)
    max_sim = np.zeros(len(rows), dtype=np.float64)
    while len(picked) < n and available.any():
        gain = np.where(available, (1 - diversity) * relevance - diversity * max_sim, -np.inf)
        best = int(np.argmax(gain))
        available[best] = False
        category = items.primary_category[rows[best]]
        if max_per_category and category is not None:
            if per_category.get(category, 0) >= max_per_category:
                continue
            per_category[category] = per_category.get(category, 0) + 1
        picked.append(best)
        max_sim = np.maximum(max_sim, vectors @ vectors[best])
    return np.asarray(picked, dtype=np.int64)


def _cap(items: ItemTable, rows: np.ndarray, order: np.ndarray, n: int,
         max_per_category: int) -> np.ndarray:
    if not max_per_category:
        return order[:n]
    picked: list[int] = []
    per_category: dict[str | None, int] = {}
    for position in order.tolist():
        category = items.primary_category[rows[position]]
        if category is not None:
            if per_category.get(category, 0) >= max_per_category:
                continue
            per_category[category] = per_category.get(category, 0) + 1
        picked.append(position)
        if len(picked) == n:
            break
    return np.asarray(picked, dtype=np.int64)

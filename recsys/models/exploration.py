"""Exploration of new items: a capped number of places per list for the content generator's.

The ranker learns from behaviour, so items nobody has touched yet rarely reach the top of a
list on their own merit, and it cannot tell them apart (they have no behaviour to score).
:func:`explore` gives each list ``slots`` of them, chosen in the content generator's order
(the one signal they have), and the next best known items in the ranker's order fill the
rest; the chosen items keep the ranker's order among themselves. The same function shapes
the evaluated lists and the served ones.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: The generator whose candidates are the new items.
NEW_ITEMS_GENERATOR = "content"
#: New items per list by default (of 10, one place: the rest stay what the ranker chose).
EXPLORE_SLOTS = 1


def new_candidates(columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Which of ``n`` candidates the content generator retrieved (its column: not NaN)."""
    score = columns.get(f"{NEW_ITEMS_GENERATOR}_score")
    return np.zeros(n, dtype=bool) if score is None else ~np.isnan(np.asarray(score, float))


def explore(order: np.ndarray, is_new: np.ndarray, new_rank: np.ndarray, n: int,
            slots: int) -> np.ndarray:
    """``n`` candidates of ``order`` (candidate indices, ranker's best first), in its order:
    the ``min(slots, available)`` new items (``is_new``) of lowest ``new_rank`` and the first
    known ones; fewer known items than places leave theirs to more new ones."""
    order = np.asarray(order, dtype=np.int64)
    new = is_new[order]
    new_total = int(np.count_nonzero(new))  # faster than a sum of booleans
    n_new = min(slots, new_total, n)
    n_known = min(n - n_new, len(new) - new_total)
    n_new = min(n - n_known, new_total)
    keep = np.zeros(len(order), dtype=bool)
    new_at = np.flatnonzero(new)
    keep[new_at[np.argsort(new_rank[order[new_at]], kind="stable")[:n_new]]] = True
    keep[np.flatnonzero(~new)[:n_known]] = True
    return order[keep]

"""Top-k ranking metrics with binary relevance, computed over the full catalogue.

Every metric scores a ranked list that was produced by ranking the *whole* catalogue (minus
items the user has already seen); nothing here samples negatives. An item is relevant to a
user when it is in the user's held-out set, and a hit is a relevant item among the first
``k`` recommendations. The definitions follow Microsoft Recommenders
(``recommenders.evaluation.python_evaluation``), which follow Spark MLlib ``RankingMetrics``:

* ``precision@k = hits / k``: the denominator is ``k`` even when fewer than ``k`` items were
  recommended, so a short list is penalised.
* ``recall@k = hits / |relevant|``: the denominator is *not* capped at ``k``, so a user with
  more than ``k`` relevant items cannot reach 1.
* ``ndcg@k = DCG / IDCG`` with ``DCG = sum over hit ranks r of 1 / log2(r + 1)`` (ranks are
  1-based) and ``IDCG`` the DCG of ``min(|relevant|, k)`` hits at ranks ``1..``. The log base
  cancels in the ratio, so this equals Microsoft Recommenders' natural-log default.
* ``map@k = (sum over hit ranks r of precision@r) / min(|relevant|, k)``: Microsoft
  Recommenders ``map_at_k`` (Spark ``meanAveragePrecisionAt``); their ``map`` divides by
  ``|relevant|`` instead.
* ``hit_rate@k = 1`` when there is at least one hit, else ``0``.

Internally every metric is a vectorised kernel over a ``(n_users, k)`` boolean hit matrix, so
the per-user functions and :func:`evaluate_rankings` share one implementation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "catalog_coverage",
    "evaluate_rankings",
    "hit_rate_at_k",
    "map_at_k",
    "ndcg_at_k",
    "popularity_bias",
    "precision_at_k",
    "recall_at_k",
]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _hit_matrix(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(n_users, k)`` hit matrix and the ``(n_users,)`` count of relevant items.

    Lists shorter than ``k`` are padded with misses. A duplicated item within the top ``k``
    raises, since it would be counted as two hits.
    """
    _check_k(k)
    hits = np.zeros((len(recommended), k), dtype=bool)
    for row, (items, rel) in enumerate(zip(recommended, relevant, strict=True)):
        top = list(items[:k])
        if len(set(top)) != len(top):
            raise ValueError(f"recommendation list {row} repeats an item within the top {k}")
        hits[row, : len(top)] = [item in rel for item in top]
    n_relevant = np.fromiter((len(rel) for rel in relevant), dtype=np.int64, count=len(relevant))
    return hits, n_relevant


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks ``1..k``."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _precision(hits: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / hits.shape[1]


def _recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / np.maximum(n_relevant, 1)


def _ndcg(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    disc = _discounts(k)
    dcg = hits @ disc
    ideal = np.concatenate(([0.0], np.cumsum(disc)))[np.minimum(n_relevant, k)]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def _map(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    total = (precision_at_rank * hits).sum(axis=1)
    return total / np.maximum(np.minimum(n_relevant, k), 1)


def _hit_rate(hits: np.ndarray) -> np.ndarray:
    return hits.any(axis=1).astype(np.float64)


def precision_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Fraction of the first ``k`` recommendations that are relevant (``hits / k``)."""
    return float(_precision(_hit_matrix([recommended], [relevant], k)[0])[0])


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Fraction of the relevant items found in the first ``k`` (``hits / |relevant|``).

    Returns 0 when ``relevant`` is empty.
    """
    hits, n_rel = _hit_matrix([recommended], [relevant], k)
    return float(_recall(hits, n_rel)[0])


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with a ``log2(rank + 1)`` discount.

    Returns 0 when ``relevant`` is empty.
    """
    hits, n_rel = _hit_matrix([recommended], [relevant], k)
    return float(_ndcg(hits, n_rel)[0])


def map_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Average precision at ``k``: sum of precision@r at hit ranks r, over ``min(|rel|, k)``.

    Returns 0 when ``relevant`` is empty.
    """
    hits, n_rel = _hit_matrix([recommended], [relevant], k)
    return float(_map(hits, n_rel)[0])


def hit_rate_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """1.0 when at least one of the first ``k`` recommendations is relevant, else 0.0."""
    return float(_hit_rate(_hit_matrix([recommended], [relevant], k)[0])[0])


def catalog_coverage(recommended: Sequence[Sequence[str]], k: int, catalog_size: int) -> float:
    """Share of the catalogue that appears in at least one top-``k`` list.

    Parameters
    ----------
    recommended
        One ranked list per user.
    k
        Only the first ``k`` items of each list count.
    catalog_size
        Number of recommendable items (the denominator), e.g. the items seen in training.
    """
    _check_k(k)
    if catalog_size < 1:
        raise ValueError(f"catalog_size must be positive, got {catalog_size}")
    distinct = {item for items in recommended for item in items[:k]}
    return len(distinct) / catalog_size


def popularity_bias(
    recommended: Sequence[Sequence[str]], k: int, item_popularity: Mapping[str, float]
) -> float:
    """Mean popularity percentile of the recommended items.

    The percentile of an item is the fraction of items in ``item_popularity`` whose
    popularity is strictly lower than its own, so it lies in ``[0, 1)``: 0 for the least
    popular items, close to 1 for the head. An item missing from ``item_popularity`` has
    popularity 0. The mean runs over every recommended slot (first ``k`` of each list); a
    popularity recommender scores close to 1, a uniformly random one about 0.5. Percentiles
    are scale-free, so values compare across data sets and training-window lengths.

    Parameters
    ----------
    recommended
        One ranked list per user.
    k
        Only the first ``k`` items of each list count.
    item_popularity
        Popularity of each catalogue item in the training data (e.g. interaction counts);
        it should cover the whole catalogue, including items with popularity 0.

    Returns
    -------
    float
        The mean percentile, or NaN when no item was recommended.
    """
    _check_k(k)
    if not item_popularity:
        raise ValueError("item_popularity is empty")
    reference = np.sort(np.fromiter(item_popularity.values(), dtype=np.float64))
    slots = [item_popularity.get(item, 0.0) for items in recommended for item in items[:k]]
    if not slots:
        return float("nan")
    below = np.searchsorted(reference, np.asarray(slots, dtype=np.float64), side="left")
    return float(np.mean(below / reference.size))


def evaluate_rankings(
    recommended: Mapping[str, Sequence[str]],
    relevant: Mapping[str, set[str]],
    k: int,
    catalog_size: int,
    item_popularity: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """All metrics at ``k``, averaged over the users that have at least one relevant item.

    A user in ``relevant`` with no entry in ``recommended`` counts as an empty list (every
    accuracy metric 0), unlike Microsoft Recommenders, which averages over the users present
    in both inputs; restrict ``relevant`` to the users the model can rank (those known in
    training) before calling. Users with recommendations but no relevant item are ignored.

    Parameters
    ----------
    recommended
        ``user_id -> ranked item ids``, best first.
    relevant
        ``user_id -> held-out item ids``.
    k
        Cut-off rank.
    catalog_size
        Number of recommendable items, the denominator of ``catalog_coverage``.
    item_popularity
        Training popularity per item; when given, ``popularity_bias`` is reported.

    Returns
    -------
    dict of str to float
        ``precision_at_{k}``, ``recall_at_{k}``, ``ndcg_at_{k}``, ``map_at_{k}``,
        ``hit_rate_at_{k}``, ``catalog_coverage`` and ``popularity_bias`` (top-``k`` lists
        of the evaluated users), and ``n_users`` (number of evaluated users).
    """
    _check_k(k)
    users = [user for user, rel in relevant.items() if rel]
    if not users:
        raise ValueError("no user has a relevant item; nothing to evaluate")
    lists = [list(recommended.get(user, ())) for user in users]
    hits, n_rel = _hit_matrix(lists, [relevant[user] for user in users], k)
    missing = sum(1 for user in users if user not in recommended)
    if missing:
        logger.warning("%d of %d evaluated users have no recommendations", missing, len(users))
    result = {
        f"precision_at_{k}": float(_precision(hits).mean()),
        f"recall_at_{k}": float(_recall(hits, n_rel).mean()),
        f"ndcg_at_{k}": float(_ndcg(hits, n_rel).mean()),
        f"map_at_{k}": float(_map(hits, n_rel).mean()),
        f"hit_rate_at_{k}": float(_hit_rate(hits).mean()),
        "catalog_coverage": catalog_coverage(lists, k, catalog_size),
        "n_users": float(len(users)),
    }
    if item_popularity is not None:
        result["popularity_bias"] = popularity_bias(lists, k, item_popularity)
    return result

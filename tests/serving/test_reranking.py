"""MMR diversity and the per-category cap on a table whose answers are known."""

import numpy as np

from serving.reranking import rerank
from tests.item_tables import item_table


def test_no_diversity_keeps_the_ranker_order() -> None:
    items = item_table()
    rows = np.arange(len(items))
    scores = np.linspace(0, 1, len(rows))
    picked = rerank(items, rows, scores, n=5)
    assert picked.tolist() == [11, 10, 9, 8, 7]


def test_category_cap_limits_each_primary_category() -> None:
    items = item_table(n_vocab=2)  # primary categories alternate c0, c1
    rows = np.arange(len(items))
    picked = rerank(items, rows, np.linspace(1, 0, len(rows)), n=5, max_per_category=2)
    assert picked.tolist() == [0, 1, 2, 3]  # two of each, then nothing else is allowed
    cats = [items.primary_category[r] for r in rows[picked]]
    assert max(cats.count(c) for c in set(cats)) <= 2


def test_mmr_prefers_a_dissimilar_item_over_a_near_duplicate() -> None:
    items = item_table(n=3)
    items.vectors[:] = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    items.has_vector[:] = True
    rows = np.arange(3)
    scores = np.array([1.0, 0.9, 0.5])
    assert rerank(items, rows, scores, n=2).tolist() == [0, 1]
    assert rerank(items, rows, scores, n=2, diversity=0.5).tolist() == [0, 2]

"""A small synthetic item table whose right answers are known."""

import numpy as np

from recsys.features.item_table import ItemTable


def item_table(n: int = 12, dim: int = 4, n_vocab: int = 5, seed: int = 0) -> ItemTable:
    """``n`` items ``i0..`` with random unit vectors, 1-2 categories each, prices 1..n."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    has_vector = np.ones(n, dtype=bool)
    has_vector[-1] = False  # the last item has no embedding
    vectors[-1] = 0.0
    cats = [[int(i % n_vocab)] + ([int((i + 1) % n_vocab)] if i % 2 else []) for i in range(n)]
    counts = np.zeros((n, n_vocab), dtype=np.float32)
    for row, c in enumerate(cats):
        counts[row, c] = 1.0
    names = [f"c{c[0]}" for c in cats]
    ids = np.array([f"i{i}" for i in range(n)], dtype=object)
    return ItemTable(
        ids=ids, index={item: i for i, item in enumerate(ids)},
        titles=[f"Item {i}" for i in range(n)],
        categories=[[f"c{x}" for x in c] for c in cats], primary_category=names,
        price=np.arange(1, n + 1, dtype=np.float64), in_stock=np.ones(n, dtype=bool),
        feature_names=["item_stats__price"],
        features=np.arange(1, n + 1, dtype=np.float32)[:, None],
        category_counts=counts, vectors=vectors, has_vector=has_vector,
    )


def category_ids(items: ItemTable) -> list[list[int]]:
    return [np.flatnonzero(row).tolist() for row in items.category_counts]

"""The serving feature computations equal the training ones (one definition of a feature)."""

import numpy as np
import pandas as pd

from serving.ranking import similarity_to_recent
from tests.serving.items import category_ids, item_table
from training.ranker import category_match, recent_similarity


def test_category_match_equals_training() -> None:
    items = item_table()
    rng = np.random.default_rng(1)
    rows = np.arange(len(items))
    for affinity in (rng.random(5).astype(np.float32), rng.random(3).astype(np.float32), None,
                     np.zeros(0, np.float32)):
        expected = category_match(pd.Series([affinity] * len(rows), dtype=object),
                                  pd.Series(category_ids(items), dtype=object))
        np.testing.assert_allclose(items.category_match(rows, affinity), expected, rtol=1e-6)


def test_recent_similarity_equals_training() -> None:
    items = item_table()
    vectors = {items.ids[i]: items.vectors[i] for i in range(len(items)) if items.has_vector[i]}
    rows = np.arange(len(items))
    ids = pd.Series(items.ids[rows])
    for recent in (["i1", "i3", "i3", "unknown"], ["i11"], [], None, ["i2"]):
        mean, best = similarity_to_recent(items, rows, recent)
        expected_mean, expected_best = recent_similarity(
            ids, pd.Series([recent] * len(rows), dtype=object), vectors
        )
        np.testing.assert_allclose(mean, expected_mean, atol=1e-6)
        np.testing.assert_allclose(best, expected_best, atol=1e-6)

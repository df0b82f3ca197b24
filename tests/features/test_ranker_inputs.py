"""The ranker's inputs from the batch frame and from the request path's arrays are equal.

Both callers use the same feature functions; this pins the two assemblies (frame columns vs
item table, user dict and candidate arrays) together, value for value and column for column.
"""

import numpy as np
import pandas as pd
import pytest

from recsys.features.names import AFFINITY, CATEGORY_IDS, RECENT_ITEMS
from recsys.features.ranker_inputs import OnlineInputs, feature_matrix
from tests.item_tables import category_ids, item_table

AFFINITIES = [np.array([0.5, 0.1, 0.2, 0.1, 0.1], np.float32), np.array([0.9, 0.1], np.float32),
              None, np.zeros(0, np.float32)]
RECENTS = [["i1", "i3", "i3", "unknown"], ["i11"], [], None, ["i2"]]


@pytest.mark.parametrize("affinity", AFFINITIES)
@pytest.mark.parametrize("recent", RECENTS)
def test_online_inputs_equal_the_batch_feature_matrix(affinity, recent) -> None:  # noqa: ANN001
    items = item_table()
    rows = np.arange(len(items))
    rng = np.random.default_rng(3)
    columns = {"als_score": rng.random(len(rows)), "als_rank": rng.integers(1, 5, len(rows))}
    user = {"user_activity__events_7d": 3.0, AFFINITY: affinity, RECENT_ITEMS: recent}
    frame = pd.DataFrame({
        "user_id": "u1", "item_id": items.ids[rows], **columns,
        "item_stats__price": items.features[rows, 0],
        "user_activity__events_7d": 3.0,
        AFFINITY: pd.Series([affinity] * len(rows), dtype=object),
        CATEGORY_IDS: pd.Series(category_ids(items), dtype=object),
        RECENT_ITEMS: pd.Series([recent] * len(rows), dtype=object),
    })
    vectors = {items.ids[i]: items.vectors[i] for i in rows if items.has_vector[i]}
    batch = feature_matrix(frame, vectors)
    online = OnlineInputs(list(batch.columns), items).matrix(rows, columns, user)
    assert list(batch.columns)[-3:] == ["category_match", "recent_sim_mean", "recent_sim_max"]
    np.testing.assert_allclose(online, batch.to_numpy(np.float32), rtol=1e-6, atol=1e-6)

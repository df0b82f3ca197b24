"""Session candidates for users the model never saw."""

import numpy as np
import pandas as pd

from recsys.models.als import ALSCandidates
from recsys.models.item_to_item import EASECandidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.retrieval import CandidateRetriever
from recsys.models.union import UnionCandidates
from tests.item_tables import item_table


def retriever() -> CandidateRetriever:
    # Two groups of users: one views items i0-i5, the other i6-i11.
    rows = [(f"u{u}", f"i{(u % 2) * 6 + k}") for u in range(40) for k in range(6) if (u + k) % 3]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    union = UnionCandidates([PopularityCandidates(name="popularity"),
                             ALSCandidates(factors=4, iterations=5, num_threads=1),
                             EASECandidates(l2=10.0, name="item2item")],
                            n_per_generator=4).fit(frame)
    return CandidateRetriever(union, item_table(n=12))


def test_session_items_pull_their_neighbours_and_are_excluded() -> None:
    found = retriever().retrieve_session(["i0", "i1"])
    by_item2item = found.rows[np.argsort(found.columns["item2item_rank"])][:4]
    assert set(by_item2item.tolist()) <= {2, 3, 4, 5}  # the same group, not the session
    assert not {0, 1} & set(found.rows.tolist())
    assert np.isnan(found.columns["als_score"]).all()
    assert (found.columns["als_rank"] == 5).all()  # n_per_generator + 1: not retrieved


def test_session_of_unknown_items_gives_no_candidates() -> None:
    assert len(retriever().retrieve_session(["not-an-item"])) == 0


def test_one_users_candidates_equal_the_batch_union() -> None:
    """The request path and training merge the generators' lists the same way (on random
    interactions: no two items tie exactly, so both orders are defined)."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 30, 200)],
                          "item_id": [f"i{i}" for i in rng.integers(0, 12, 200)],
                          "weight": rng.uniform(0.5, 3.0, 200)})
    union = UnionCandidates([PopularityCandidates(name="popularity"),
                             ALSCandidates(factors=4, iterations=5, num_threads=1),
                             EASECandidates(l2=10.0, name="item2item")],
                            n_per_generator=4).fit(frame)
    items = item_table(n=12)
    found = CandidateRetriever(union, items)
    for user in ("u0", "u1", "u7", "u20"):
        batch = union.candidates([user]).set_index("item_id")
        online = found.retrieve(user)
        ids = items.ids[online.rows]
        assert sorted(ids) == sorted(batch.index)
        for column, values in online.columns.items():
            expected = batch.loc[ids, column].to_numpy(np.float64)
            np.testing.assert_allclose(values, expected, rtol=1e-5, equal_nan=True)

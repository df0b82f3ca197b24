"""Session candidates for users the model never saw."""

import numpy as np
import pandas as pd

from recsys.models.als import ALSCandidates
from recsys.models.item_to_item import EASECandidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.retrieval import CandidateRetriever
from recsys.models.union import UnionCandidates
from tests.serving.items import item_table


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

"""Candidate lists computed in batch equal what the request path retrieves, through their
packed form."""

import numpy as np
import pandas as pd
import pytest

from recsys.models.als import ALSCandidates
from recsys.models.candidate_lists import batch_lists, decode_block, encode_block
from recsys.models.item_to_item import EASECandidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.retrieval import CandidateRetriever, Candidates
from recsys.models.union import UnionCandidates
from tests.item_tables import item_table


@pytest.fixture(scope="module")
def union() -> UnionCandidates:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 30, 300)],
                          "item_id": [f"i{i}" for i in rng.integers(0, 14, 300)],
                          "weight": rng.uniform(0.5, 3.0, 300)})
    return UnionCandidates([PopularityCandidates(name="popularity"),
                            ALSCandidates(factors=4, iterations=5, num_threads=1),
                            EASECandidates(l2=10.0, name="item2item")],
                           n_per_generator=5).fit(frame)


def test_batch_lists_equal_the_request_paths_retrieval(union: UnionCandidates) -> None:
    """Every known user's list, computed a few users at a time, holds the rows and columns
    one user's retrieval gives (the catalog lacks i12 and i13: dropped after ranking)."""
    items = item_table(n=12)
    online = CandidateRetriever(union, items)
    users = [*union.generators[0].interactions.user_ids.tolist(), "nobody"]
    found = dict(batch_lists(union, items.ids.tolist(), users, batch_users=7))
    assert set(found) == set(users) - {"nobody"}
    for user, batch in found.items():
        expected = online.retrieve(user)
        np.testing.assert_array_equal(batch.rows, expected.rows)
        assert batch.columns.keys() == expected.columns.keys()
        for name, values in expected.columns.items():
            np.testing.assert_allclose(batch.columns[name], values, rtol=1e-6, equal_nan=True)


def test_a_block_decodes_to_the_same_candidates(union: UnionCandidates) -> None:
    items = item_table(n=12)
    user, candidates = next(iter(batch_lists(union, items.ids.tolist(), ["u3"])))
    back = decode_block(encode_block(candidates, union.names), union.names)
    np.testing.assert_array_equal(back.rows, candidates.rows)
    for name, values in candidates.columns.items():
        # float32 scores of the generators survive exactly, NaN (absent) included
        np.testing.assert_array_equal(back.columns[name].astype(np.float32),
                                      values.astype(np.float32))
    with pytest.raises(ValueError, match="block of 23 bytes"):
        decode_block(b"\x00" * 23, union.names)
    with pytest.raises(ValueError, match="left over"):
        decode_block(encode_block(candidates, union.names) + b"\x00", union.names)


def test_a_decoded_tables_subsets_and_inputs_equal_the_columns_ones(
        union: UnionCandidates) -> None:
    """A decoded block's table (one array of its columns) gives the subsets and the ranker
    inputs that its columns alone give."""
    from recsys.features.ranker_inputs import OnlineInputs

    items = item_table(n=12)
    _, candidates = next(iter(batch_lists(union, items.ids.tolist(), ["u3"])))
    back = decode_block(encode_block(candidates, union.names), union.names)
    assert back.table is not None
    plain = Candidates(back.rows, dict(back.columns))
    features = [*back.columns, *(f"{name}_score_z" for name in union.names)]
    inputs = OnlineInputs(features, items)
    for keep in (np.arange(len(back)) % 2 == 0, np.array([2, 0, 1])):
        fast, slow = back.subset(keep), plain.subset(keep)
        assert fast.table is not None and slow.table is None
        np.testing.assert_array_equal(fast.rows, slow.rows)
        for name, values in slow.columns.items():
            np.testing.assert_array_equal(fast.columns[name], values)
        np.testing.assert_array_equal(
            inputs.matrix(fast.rows, fast.columns, {}, table=fast.table),
            inputs.matrix(slow.rows, slow.columns, {}))


def test_a_block_stores_only_the_cells_a_generator_holds() -> None:
    """Three generators' lists of 100 with no row in common: 300 rows, of which each
    generator holds a third; unsorted rows and ranks with a gap are kept as they were."""
    names = ["a", "b", "c"]
    rows = np.arange(300) * 7
    columns = {}
    for k, name in enumerate(names):
        mine = np.arange(300) // 100 == k
        columns[f"{name}_score"] = np.where(mine, np.linspace(1.0, 0.0, 300), np.nan)
        columns[f"{name}_rank"] = np.where(mine, np.arange(300) % 100 + 1, 101.0)
    columns["c_rank"][250:300] += 1  # an item dropped from c's list after ranking
    candidates = Candidates(rows, columns)
    dense = len(rows) * (4 + 6 * len(names))
    block = encode_block(candidates, names)
    assert len(block) < dense * 0.4
    for shuffled in (candidates, Candidates(rows[::-1], {k: v[::-1] for k, v in columns.items()})):
        back = decode_block(encode_block(shuffled, names), names)
        np.testing.assert_array_equal(back.rows, shuffled.rows)
        for name, values in shuffled.columns.items():
            np.testing.assert_array_equal(back.columns[name],
                                          values.astype(np.float32).astype(np.float64))


def test_fresh_candidates_add_only_the_rows_the_list_lacks() -> None:
    stored = Candidates(np.array([1, 4]), {"a_score": np.array([0.5, 0.4]),
                                           "a_rank": np.array([1.0, 2.0])})
    fresh = Candidates(np.array([2, 4]), {"a_score": np.array([0.9, 0.8]),
                                          "a_rank": np.array([1.0, 2.0])})
    merged = stored.merged_with(fresh)
    np.testing.assert_array_equal(merged.rows, [1, 2, 4])
    np.testing.assert_array_equal(merged.columns["a_score"], [0.5, 0.9, 0.4])  # 4: stored
    np.testing.assert_array_equal(merged.columns["a_rank"], [1.0, 1.0, 2.0])
    assert stored.merged_with(Candidates(np.empty(0, np.int64), {})) is stored

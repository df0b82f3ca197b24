"""Candidate generators on a checker-board world whose right answer is known.

Users ``a*`` like only items ``a*`` and users ``b*`` only items ``b*``; each user has seen
half of their block. A correct collaborative model recommends the unseen half of the user's
own block and never the other block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.models.als import ALSCandidates
from recsys.models.generator import CandidateGenerator
from recsys.models.item_to_item import EASECandidates, ItemKNNCandidates
from recsys.models.matrix import InteractionMatrix
from recsys.models.popularity import PopularityCandidates
from recsys.models.topn import top_n, top_n_of_row
from recsys.models.union import UnionCandidates

BLOCK = 20
N_PER_GROUP = 30


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for group in "ab":
        for user in range(N_PER_GROUP):
            for item in rng.choice(BLOCK, BLOCK // 2, replace=False):
                rows.append((f"{group}{user}", f"{group}{item:02d}"))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    frame["timestamp"] = pd.Timestamp("2024-01-01", tz="UTC")
    return frame


def _collaborative() -> list[CandidateGenerator]:
    return [
        ALSCandidates(factors=4, regularization=1.0, alpha=10.0, iterations=20, num_threads=1),
        EASECandidates(l2=10.0),
        ItemKNNCandidates(neighbours=10),
    ]


@pytest.fixture(scope="module", params=["als", "ease", "itemknn"])
def fitted(request: pytest.FixtureRequest, world: pd.DataFrame) -> CandidateGenerator:
    generator = next(g for g in _collaborative() if g.name == request.param)
    return generator.fit(world)


def test_recommends_unseen_items_of_own_block(
    fitted: CandidateGenerator, world: pd.DataFrame
) -> None:
    users = sorted(world["user_id"].unique())
    recs = fitted.recommend(users, n=5)
    for user in users:
        items, scores = recs[user]
        assert len(items) == 5 and scores.shape == (5,)
        assert all(item[0] == user[0] for item in items), (user, items)
        assert not set(items) & fitted.interactions.seen(user)
        assert np.all(np.diff(scores) <= 1e-6), "scores must be best first"


def test_save_load_round_trip(
    fitted: CandidateGenerator, world: pd.DataFrame, tmp_path: Path
) -> None:
    users = ["a0", "b3", "nobody"]
    fitted.save(tmp_path / "model")
    loaded = CandidateGenerator.load(tmp_path / "model")
    assert type(loaded) is type(fitted) and loaded.name == fitted.name
    before, after = fitted.recommend(users, 7), loaded.recommend(users, 7)
    for user in users:
        assert before[user][0] == after[user][0]
        np.testing.assert_array_equal(before[user][1], after[user][1])
    with pytest.raises(TypeError):
        PopularityCandidates.load(tmp_path / "model")


def test_unknown_user_gets_empty_list(fitted: CandidateGenerator) -> None:
    items, scores = fitted.recommend(["nobody"], n=5)["nobody"]
    assert items == [] and scores.size == 0


def test_list_is_capped_by_eligible_items(fitted: CandidateGenerator) -> None:
    items, _ = fitted.recommend(["a0"], n=1000)["a0"]
    assert len(items) == 2 * BLOCK - BLOCK // 2
    items, _ = fitted.recommend(["a0"], n=1000, exclude_seen=False)["a0"]
    assert len(items) == 2 * BLOCK


@pytest.mark.parametrize("generator", [EASECandidates(l2=10.0), ItemKNNCandidates(10)])
def test_recommend_from_items(generator: EASECandidates, world: pd.DataFrame) -> None:
    generator.fit(world)
    items, scores = generator.recommend_from_items(["b01", "b02", "unknown"], n=5)
    assert len(items) == 5 and all(item.startswith("b") for item in items)
    assert not {"b01", "b02"} & set(items)
    assert generator.recommend_from_items(["unknown"], n=5) == ([], pytest.approx([]))


def test_als_score_and_similar_items(world: pd.DataFrame) -> None:
    als = _collaborative()[0].fit(world)
    items, scores = als.recommend(["a0"], n=3)["a0"]
    np.testing.assert_allclose(als.score("a0", items), scores, rtol=1e-5)
    assert np.isnan(als.score("a0", ["unknown"])).all()
    assert np.isnan(als.score("nobody", items)).all()
    similar, _ = als.similar_items("a05", n=5)
    assert len(similar) == 5 and "a05" not in similar and all(s[0] == "a" for s in similar)
    assert als.similar_items("unknown", n=5)[0] == []


def test_popularity_ranks_by_count_and_recency() -> None:
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u1", "u2", "u3"],
            "item_id": ["old", "old", "old", "new", "new", "mid"],
            "timestamp": [
                t0,
                t0,
                t0,
                t0 + pd.Timedelta(days=30),
                t0 + pd.Timedelta(days=30),
                t0 + pd.Timedelta(days=20),
            ],
        }
    )
    plain = PopularityCandidates().fit(frame)
    assert plain.recommend(["u3"], 3, exclude_seen=False)["u3"][0] == ["old", "new", "mid"]
    assert plain.recommend(["u3"], 3)["u3"][0] == ["new"]
    decayed = PopularityCandidates(half_life_days=10.0).fit(frame)
    items, scores = decayed.recommend(["u3"], 3, exclude_seen=False)["u3"]
    # new: 2 * 0.5**0 = 2; mid: 0.5**(10/10) = 0.5; old: 3 * 0.5**(30/10) = 0.375
    assert items == ["new", "mid", "old"]
    np.testing.assert_allclose(scores, [2.0, 0.5, 0.375])


def test_interaction_matrix(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"user_id": ["u2", "u1", "u1"], "item_id": ["x", "y", "y"], "weight": [1.0, 2.0, 0.5]}
    )
    matrix = InteractionMatrix.from_frame(frame)
    assert matrix.user_ids.tolist() == ["u1", "u2"] and matrix.item_ids.tolist() == ["x", "y"]
    assert matrix.matrix.toarray().tolist() == [[0.0, 2.5], [1.0, 0.0]]
    assert matrix.seen("u1") == {"y"} and matrix.seen("nobody") == set()
    assert matrix.user_indices(["u2", "nobody"]).tolist() == [1, -1]
    matrix.save(tmp_path)
    loaded = InteractionMatrix.load(tmp_path)
    assert (loaded.matrix != matrix.matrix).nnz == 0
    assert loaded.item_ids.tolist() == matrix.item_ids.tolist()
    with pytest.raises(ValueError, match="finite"):
        InteractionMatrix.from_frame(frame.assign(weight=[1.0, np.nan, 1.0]))


def test_union_candidates(world: pd.DataFrame, tmp_path: Path) -> None:
    union = UnionCandidates([EASECandidates(l2=10.0), PopularityCandidates()], 4).fit(world)
    frame = union.candidates(["a0", "b0", "nobody"])
    assert list(frame.columns) == [
        "user_id",
        "item_id",
        "ease_score",
        "ease_rank",
        "popularity_score",
        "popularity_rank",
    ]
    assert not frame.duplicated(["user_id", "item_id"]).any()
    assert set(frame["user_id"]) == {"a0", "b0"}
    for name in ("ease", "popularity"):
        retrieved = frame[f"{name}_rank"] <= 4
        assert frame.groupby("user_id")[f"{name}_rank"].apply(lambda r: (r <= 4).sum()).eq(4).all()
        assert frame.loc[retrieved, f"{name}_score"].notna().all()
        assert frame.loc[~retrieved, f"{name}_score"].isna().all()
        assert (frame.loc[~retrieved, f"{name}_rank"] == 5).all()
    union.save(tmp_path)
    pd.testing.assert_frame_equal(
        UnionCandidates.load(tmp_path).candidates(["a0", "b0"]), union.candidates(["a0", "b0"])
    )
    with pytest.raises(ValueError, match="unique"):
        UnionCandidates([PopularityCandidates(), PopularityCandidates()], 3)


@pytest.mark.parametrize("n", [1, 5, 40, 60])
def test_top_n_of_row_equals_the_batch_selection(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(200):
        # few distinct values: ties everywhere, also across the cut-off; some excluded
        scores = rng.integers(0, 6, size=50).astype(np.float32)
        scores[rng.random(50) < 0.2] = -np.inf
        cols, values = top_n(scores[None, :], n)
        keep = values[0] > -np.inf
        got_cols, got_values = top_n_of_row(scores, n)
        np.testing.assert_array_equal(got_cols, cols[0][keep])
        np.testing.assert_array_equal(got_values, values[0][keep])
        assert list(got_values) == sorted(got_values, reverse=True)

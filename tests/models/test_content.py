"""New items: the content generator, exploration, and the evaluated lists equal the served."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.holdout import pipeline_rankings
from recsys.models.content import ContentCandidates, content_tokens, existing_items
from recsys.models.exploration import explore, new_candidates
from recsys.models.generator import CandidateGenerator

# i0-i5 are known (action: i0-i2, drama: i3-i5); n0-n3 are new (n0, n1 action; n2, n3 drama)
CATALOG = pd.DataFrame({
    "item_id": ["i0", "i1", "i2", "i3", "i4", "i5", "n0", "n1", "n2", "n3", "n4"],
    "title": ["Car Chase", "Big Fight", "Explosion Day", "Quiet Tears", "Long Letter",
              "Rainy Night", "Car Chase Returns", "Fight Club Again", "Tears of Rain",
              "Letter Home", None],
    "categories": [["action"]] * 3 + [["drama"]] * 3 + [["action"], ["action"], ["drama"],
                                                        ["drama"], None],
    "price": [5.0, 6.0, 7.0, 20.0, 25.0, 30.0, 6.5, 5.5, 28.0, 22.0, np.nan],
    "created_at": pd.to_datetime(["2026-01-01"] * 10 + ["2026-03-01"], utc=True),
})
INTERACTIONS = pd.DataFrame(
    [(f"a{u}", f"i{k}") for u in range(6) for k in range(3)]
    + [(f"d{u}", f"i{k}") for u in range(6) for k in range(3, 6)] + [("d0", "i0")],
    columns=["user_id", "item_id"])


def fitted(max_interactions: int = 0) -> ContentCandidates:
    return ContentCandidates(CATALOG, max_interactions=max_interactions).fit(INTERACTIONS)


def test_new_items_of_the_users_taste_come_first_and_known_ones_never() -> None:
    model = fitted()
    recs = model.recommend(["a1", "d1", "stranger"], 4)
    assert set(recs["a1"][0][:2]) == {"n0", "n1"} and set(recs["d1"][0][:2]) == {"n2", "n3"}
    assert set(recs["a1"][0]) <= {"n0", "n1", "n2", "n3"}  # n4 says nothing of itself
    assert recs["stranger"][0] == []
    assert model.recommend_from_items(["i3"], 2)[0][0] in ("n2", "n3")
    # with up to 6 users allowed, known items with 6 are proposed too, not i0 (7 users)
    few = fitted(6).recommend(["d2"], 10)["d2"][0]
    assert {"i1", "i2"} <= set(few) and "i0" not in few and not {"i3", "i4", "i5"} & set(few)


def test_content_generator_saves_and_loads(tmp_path: Path) -> None:
    model = fitted()
    model.save(tmp_path / "content")
    loaded = CandidateGenerator.load(tmp_path / "content")
    rows = np.arange(model.interactions.n_users)
    np.testing.assert_array_equal(loaded.user_scores(rows), model.user_scores(rows))


def test_tokens_and_existing_items() -> None:
    tokens = content_tokens(CATALOG)
    assert tokens[6] == ["cat:action", "word:car", "word:chase", "word:returns", "price:1"]
    assert tokens[10] == []
    assert existing_items(CATALOG, pd.Timestamp("2026-02-01", tz="UTC"))["item_id"].tolist() \
        == CATALOG["item_id"].tolist()[:10]


def test_explore_gives_new_items_their_capped_places() -> None:
    is_new = np.array([0, 0, 1, 0, 1, 0, 0, 1], dtype=bool)
    content_rank = np.array([9, 9, 3, 9, 1, 9, 9, 2], dtype=float)
    order = np.arange(8)
    assert explore(order, is_new, content_rank, 4, 1).tolist() == [0, 1, 3, 4]  # content's best
    assert explore(order, is_new, content_rank, 4, 0).tolist() == [0, 1, 3, 5]
    assert explore(order, is_new, content_rank, 4, 2).tolist() == [0, 1, 4, 7]
    # fewer known items than places: new ones fill them
    assert explore(np.array([2, 4, 7, 0]), is_new, content_rank, 3, 1).tolist() == [4, 7, 0]


class FakeModel:
    """Stands in for a Recommender: fixed candidates and scores."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.candidates = self

    def featured_candidates(self, users, store, as_of, service):  # noqa: ANN001, ANN201
        return self.frame[self.frame["user_id"].isin(users)].reset_index(drop=True)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["score"].to_numpy()


@pytest.mark.parametrize("slots", [0, 1, 3])
def test_evaluated_lists_explore_as_the_service_does(slots: int) -> None:
    rng = np.random.default_rng(4)
    rows = []
    for user in range(30):
        n = int(rng.integers(3, 15))
        new = rng.random(n) < rng.uniform(0, 0.8)
        rows += [{"user_id": f"u{user}", "item_id": f"x{k}", "score": rng.normal(),
                  "content_score": rng.random() if new[k] else np.nan,
                  "content_rank": float(rng.integers(1, 20)) if new[k] else 21.0}
                 for k in range(n)]
    frame = pd.DataFrame(rows)
    got = pipeline_rankings(FakeModel(frame), sorted(set(frame["user_id"])), None, None, 5,
                            "ranker_v2", slots)
    for user, group in frame.groupby("user_id"):
        group = group.reset_index(drop=True)
        order = np.argsort(-group["score"].to_numpy(), kind="stable")
        is_new = new_candidates(group, len(group))
        expected = explore(order, is_new, group["content_rank"].to_numpy(), 5, slots)
        assert got[user] == group["item_id"].to_numpy()[expected].tolist()
    # users ranked a few at a time get the same lists
    assert pipeline_rankings(FakeModel(frame), sorted(set(frame["user_id"])), None, None, 5,
                             "ranker_v2", slots, batch_users=4) == got


def test_served_lists_explore_as_the_evaluated_ones() -> None:
    """The engine's exploration after re-ranking (no diversity) is :func:`explore` of the
    candidates in score order, as :func:`pipeline_rankings` applies it."""
    from types import SimpleNamespace

    from recsys.models.retrieval import Candidates
    from serving.engine import Engine
    from serving.reranking import rerank
    from tests.item_tables import item_table

    items, rng = item_table(n=12), np.random.default_rng(7)
    new = rng.random(12) < 0.4
    columns = {"content_score": np.where(new, rng.random(12), np.nan),
               "content_rank": np.where(new, rng.permutation(12) + 1.0, 51.0)}
    candidates, scores = Candidates(np.arange(12), columns), rng.normal(size=12)
    for slots in (0, 1, 2):
        picked = rerank(items, candidates.rows, scores, 5, 0.0, 0)
        served = Engine._explore(SimpleNamespace(explore_slots=slots),  # type: ignore[arg-type]
                                 candidates, scores, picked, 5)
        expected = explore(np.argsort(-scores, kind="stable"), new, columns["content_rank"], 5,
                           slots)
        assert served.tolist() == expected.tolist()
        assert new[served].sum() == min(slots, new.sum())

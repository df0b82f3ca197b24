"""Reasons name what drove an item's score; on the synthetic world, an item of its taste."""

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from recsys.events.synthetic import World, WorldConfig, generate_world
from recsys.features.interactions import to_interactions
from recsys.features.item_table import ItemTable
from recsys.features.names import CATEGORY_IDS
from recsys.features.tables import category_vocabulary
from recsys.models.item_to_item import EASECandidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.ranker import Ranker, RankerParams
from recsys.models.reasons import CATEGORY, POPULAR, SEED_ITEM, SIMILAR_ITEM, ReasonFinder
from recsys.models.recommender import CandidateParams, Recommender, build_candidates
from recsys.models.retrieval import CandidateRetriever
from recsys.models.scoring import CandidateScorer
from recsys.models.union import UnionCandidates
from tests.item_tables import item_table


@dataclass
class Fitted:
    world: World
    items: ItemTable
    retriever: CandidateRetriever
    finder: ReasonFinder
    histories: pd.Series  # user -> items, most recent first


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    """The default synthetic world (2,000 users, 1,000 items, 60 days) and its generators."""
    world = generate_world(WorldConfig(seed=3, end=datetime(2026, 1, 1, tzinfo=UTC)))
    interactions = to_interactions(world.events)
    union = build_candidates(CandidateParams(n_per_generator=50, num_threads=1),
                             len(world.items)).fit(interactions)
    vocab = {c: i for i, c in enumerate(category_vocabulary(world.items))}
    columns = {CATEGORY_IDS: [[vocab[c] for c in cats] for cats in world.items["categories"]]}
    vectors = Recommender(union, None, world.items).item_vectors()
    items = ItemTable.from_columns(world.items, vectors, columns)
    histories = (interactions.sort_values("timestamp", kind="stable").groupby("user_id")["item_id"]
                 .agg(lambda s: list(dict.fromkeys(s.tolist()[::-1]))))
    return Fitted(world, items, CandidateRetriever(union, items), ReasonFinder(union, items),
                  histories)


def test_named_items_share_the_recommended_items_taste_cluster(fitted: Fitted) -> None:
    """Over 400 users' top 10 (ALS order, as served without a ranker), the item a reason
    names has the recommended item's true cluster (its main category in the world)."""
    cluster = fitted.world.item_categories.argmax(axis=1)  # rows of world.items = table rows
    kinds: dict[str, int] = {}
    same = named = 0
    for user in fitted.world.users["user_id"][:400]:
        candidates = fitted.retriever.retrieve(user)
        if not len(candidates):
            continue
        top = candidates.subset(np.argsort(-np.nan_to_num(candidates.columns["als_score"],
                                                          nan=-np.inf), kind="stable")[:10])
        reasons = fitted.finder.explain(user, top.rows, top.columns, fitted.histories[user], None)
        for row, reason in zip(top.rows.tolist(), reasons, strict=True):
            kinds[reason.kind] = kinds.get(reason.kind, 0) + 1
            if reason.item_id is not None:
                named += 1
                same += cluster[fitted.items.index[reason.item_id]] == cluster[row]
    share = same / named
    print(f"\nreasons naming an item of the recommended item's true cluster: {same}/{named} "
          f"= {share:.3f}; reason kinds {kinds}")
    assert named >= 0.9 * sum(kinds.values())
    assert kinds.get(SEED_ITEM, 0) > 0 and kinds.get(SIMILAR_ITEM, 0) > 0
    assert share >= 0.8


def test_seed_item_is_the_history_item_contributing_most() -> None:
    # u0..u19 view i0-i2 together; u20..u39 view i3-i5 together; u40 saw i0 and i3.
    rows = ([(f"u{u}", f"i{k}") for u in range(20) for k in (0, 1, 2)]
            + [(f"u{u}", f"i{k}") for u in range(20, 40) for k in (3, 4, 5)]
            + [("u40", "i0"), ("u40", "i3")])
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    union = UnionCandidates([PopularityCandidates(name="popularity"),
                             EASECandidates(l2=1.0, name="item2item")],
                            n_per_generator=4).fit(frame)
    items = item_table(n=12)
    finder = ReasonFinder(union, items)
    found = CandidateRetriever(union, items).retrieve("u40")
    reasons = finder.explain("u40", found.rows, found.columns, ["i3", "i0"], None)
    by_item = {str(items.ids[r]): reason for r, reason in zip(found.rows, reasons, strict=True)}
    for item, seed in (("i1", "i0"), ("i2", "i0"), ("i4", "i3"), ("i5", "i3")):
        assert by_item[item].kind == SEED_ITEM and by_item[item].item_id == seed
    # a session (a user the model never saw) is explained by its own items
    session = CandidateRetriever(union, items).retrieve_session(["i4"])
    reasons = finder.explain("new", session.rows, session.columns, ["i4"], None)
    assert {r.item_id for r, row in zip(reasons, session.rows, strict=True)
            if items.ids[row] in ("i3", "i5")} == {"i4"}


def test_without_history_the_liked_category_then_popularity_explains() -> None:
    items = item_table(n=12)  # item i has categories c(i % 5) and, for odd i, c(i+1 % 5)
    union = UnionCandidates([PopularityCandidates(name="popularity")], n_per_generator=4).fit(
        pd.DataFrame({"user_id": ["u0"], "item_id": ["i0"]}))
    finder = ReasonFinder(union, items)
    affinity = np.array([0.0, 0.0, 0.9, 0.1, 0.0])  # likes c2, a little c3
    reasons = finder.explain("u9", np.array([1, 2, 3, 0]), {}, [], affinity)
    assert [(r.kind, r.category) for r in reasons] == [
        (CATEGORY, "c2"), (CATEGORY, "c2"), (CATEGORY, "c3"), (POPULAR, "c0")]
    assert reasons[0].text == "matches your interest in c2"


def test_contributions_are_the_rankers_own_decomposition() -> None:
    """With ``explain``, each item carries LightGBM's ``pred_contrib``: the largest first, the
    features' values beside them, and all of them plus the bias sum to the score."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 30, 300)],
                          "item_id": [f"i{i}" for i in rng.integers(0, 12, 300)]})
    union = UnionCandidates([PopularityCandidates(name="popularity"),
                             EASECandidates(l2=10.0, name="item2item")],
                            n_per_generator=6).fit(frame)
    X = pd.DataFrame({"item2item_score": rng.normal(size=400),
                      "item_stats__price": rng.uniform(1, 12, 400)})
    relevance = (X["item2item_score"] > 0.2).astype(int).to_numpy()
    ranker = Ranker(RankerParams(n_estimators=20, min_child_samples=5, num_threads=1)).fit(
        X, relevance, np.full(20, 20))
    items = item_table(n=12)
    scorer = CandidateScorer(Recommender(union, ranker, pd.DataFrame()), items)
    candidates = CandidateRetriever(union, items).retrieve("u3")
    scores, inputs = scorer.rank(candidates, {})
    explained = scorer.contributions(inputs, top=2)
    full = scorer.booster.predict(scorer.matrix(candidates, {}), pred_contrib=True)
    assert explained is not None and len(explained) == len(candidates)
    for i, top in enumerate(explained):
        assert [c["feature"] for c in top] == [
            ranker.features[j] for j in np.argsort(-np.abs(full[i, :-1]), kind="stable")[:2]]
        assert top[0]["value"] == pytest.approx(
            scorer.matrix(candidates, {})[i, ranker.features.index(top[0]["feature"])])
        assert sum(c["contribution"] for c in top) + full[i, -1] == pytest.approx(scores[i])


def test_similar_item_of_the_candidates_main_category_is_named_first() -> None:
    """Among similar history items, one of the candidate's main category is named before a
    closer one of another taste; without any, the closest one is."""
    items = item_table(n=12)  # i0: c0; i1: c1, c2; i2: c2; i5: c0, c1
    union = UnionCandidates([PopularityCandidates(name="popularity")], n_per_generator=4).fit(
        pd.DataFrame({"user_id": ["u0"], "item_id": ["i0"]}))
    finder = ReasonFinder(union, items)
    basis = np.eye(4, dtype=np.float32)
    items.vectors[0] = basis[0]
    items.vectors[1] = 0.9 * basis[0] + np.sqrt(1 - 0.81) * basis[1]  # cosine 0.9 with i0
    items.vectors[5] = 0.3 * basis[0] + np.sqrt(1 - 0.09) * basis[2]  # cosine 0.3, its c0
    items.vectors[2] = -basis[0]  # c2: dissimilar
    assert finder.similar_items(np.array([0]), ["i1", "i5", "i2"]).tolist() == [5]
    assert finder.similar_items(np.array([0]), ["i1", "i2"]).tolist() == [1]
    items.vectors[5] = -items.vectors[5]  # a dissimilar item is never named, main category or not
    assert finder.similar_items(np.array([0]), ["i5", "i1"]).tolist() == [1]

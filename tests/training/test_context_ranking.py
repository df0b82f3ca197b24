"""A request's context changes its ranking where the world's taste depends on the time of day."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.events.synthetic import WorldConfig, generate_world
from recsys.features.context import CONTEXT_FEATURES, request_context
from recsys.features.item_table import ItemTable
from recsys.features.names import RANKER_SERVICE
from recsys.features.reads import historical_features
from recsys.features.snapshot import FeatureSnapshots
from recsys.models.ranker import RankerParams
from recsys.models.recommender import CandidateParams, Recommender
from recsys.models.retrieval import CandidateRetriever
from recsys.models.scoring import CandidateScorer
from training.train import TrainingConfig, base_candidates, fit_label_ranker, training_data


def test_evening_requests_rank_evening_items_higher(tmp_path: Path) -> None:
    """Items of odd categories appeal in the evening (18:00-06:00 UTC), the others by day;
    the ranker trained on the world's lists, given the request's hour, ranks more of the
    evening items into the top 10 of an evening request than of a midday one."""
    world = generate_world(WorldConfig(n_users=800, n_items=200, days=40, seed=5,
                                       evening_taste=0.8, end=datetime(2026, 1, 1, tzinfo=UTC)))
    config = TrainingConfig(candidates=CandidateParams(n_per_generator=40, num_threads=1),
                            ranker=RankerParams(num_threads=1), holdout_fraction=0.05,
                            label_fraction=0.25)
    data = training_data(world.events, world.items, config)
    as_of = data.windows.label_start
    with FeatureSnapshots(tmp_path / "snapshots") as snapshots:
        store = snapshots.store(world.events, world.items)
        base = base_candidates(data)
        ranker = fit_label_ranker(data, base, store).ranker
        users = sorted(set(base.generators[0].interactions.user_ids.tolist()))[:200]
        pairs = pd.DataFrame({"user_id": users[0], "item_id": data.catalog["item_id"]})
        item_rows = historical_features(store, pairs, as_of, RANKER_SERVICE)
        user_rows = historical_features(
            store, pd.DataFrame({"user_id": users, "item_id": users[0]}), as_of, RANKER_SERVICE)
    assert set(CONTEXT_FEATURES) <= set(ranker.features)
    assert ranker.feature_importance()["daypart_share"] > 0
    model = Recommender(base, ranker, data.catalog)
    item_columns = {c: [v.tolist() if isinstance(v, np.ndarray) else v for v in item_rows[c]]
                    for c in item_rows if c.startswith("item_stats__")}
    items = ItemTable.from_columns(data.catalog, model.item_vectors(), item_columns)
    scorer, retriever = CandidateScorer(model, items), CandidateRetriever(base, items)
    evening_item = world.item_categories.argmax(axis=1) % 2 == 1  # catalog rows = world rows
    shares, changed = {12: [], 21: []}, 0
    for record in user_rows.to_dict("records"):  # as the online store gives them: lists
        user = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in record.items()}
        candidates = retriever.retrieve(user["user_id"])
        tops = {}
        for hour in shares:
            scores = scorer.score(candidates, user, request_context({"hour": hour}))
            tops[hour] = candidates.rows[np.argsort(-scores, kind="stable")[:10]]
            shares[hour].append(evening_item[tops[hour]].mean())
        changed += not np.array_equal(tops[12], tops[21])
    midday, evening = np.mean(shares[12]), np.mean(shares[21])
    print(f"\nevening items in the top 10: {midday:.3f} at 12:00, {evening:.3f} at 21:00; "
          f"{changed}/{len(user_rows)} lists changed")
    assert changed >= 0.5 * len(user_rows)
    assert evening >= midday + 0.1

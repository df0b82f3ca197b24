"""Choosing the ranker's setting and rounds on lists whose right order is known."""

import numpy as np
import pandas as pd
import pytest

from recsys.models.ranker import Ranker, RankerFitError, RankerParams
from training.train import RankerLists, fit_ranker
from training.tuning import RANKER_GRID, tune_ranker


def lists(n_users: int, seed: int, noise: float = 0.0) -> RankerLists:
    """Per user 10 candidates; relevance is 1 exactly when `signal` > 0.5 (flipped at `noise`)."""
    rng = np.random.default_rng(seed)
    rows = n_users * 10
    X = pd.DataFrame({"signal": rng.random(rows), "noise": rng.random(rows)})
    relevance = (X["signal"] > 0.5).to_numpy().astype(int)
    flip = rng.random(rows) < noise
    relevance[flip] = 1 - relevance[flip]
    users = np.repeat([f"u{i:03d}" for i in range(n_users)], 10)
    return RankerLists(X=X, relevance=relevance, users=users, stats={})


FAST = RankerParams(n_estimators=60, early_stopping_rounds=10, min_child_samples=5,
                    num_threads=1, valid_fraction=0.2)


def test_cross_validation_finds_the_signal_and_stops_early() -> None:
    data = lists(120, seed=1)
    X, y, groups = data.part(np.ones(len(data.users), dtype=bool))
    rounds, ndcg = Ranker(FAST).cross_validate(X, y, groups, folds=3)
    assert 1 <= rounds <= FAST.n_estimators
    assert ndcg > 0.95
    with pytest.raises(RankerFitError, match="folds"):
        Ranker(FAST).cross_validate(X, y, groups, folds=1)


def test_fit_ranker_holds_out_a_share_of_users_for_early_stopping() -> None:
    ranker = fit_ranker(lists(100, seed=2, noise=0.3), FAST)
    assert 0.5 < ranker.valid_ndcg <= 1.0
    assert 1 <= ranker.rounds <= FAST.n_estimators
    test = lists(30, seed=3)
    scores = ranker.predict(test.X)
    assert scores[test.relevance == 1].mean() > scores[test.relevance == 0].mean()


def test_tune_ranker_tries_every_setting_and_refits_the_best() -> None:
    ranker, trials = tune_ranker(lists(90, seed=4, noise=0.1), FAST)
    assert [(t.params["num_leaves"], t.params["learning_rate"]) for t in trials] == [
        (leaves, rate) for leaves, rate, _ in RANKER_GRID
    ]
    best = max(trials, key=lambda t: t.ndcg)
    assert ranker.params.num_leaves == best.params["num_leaves"]
    assert ranker.rounds == best.params["rounds"] == ranker.params.n_estimators


def test_a_generator_order_that_beats_the_ranker_on_validation_replaces_it() -> None:
    from training.tuning import Trial, list_ndcg, ranker_or_generator

    data = lists(60, seed=3)
    perfect = data.relevance + 0.1 * data.X["noise"].to_numpy()  # relevant first, always
    data.X["als_score"] = perfect
    data.X["popularity_score"] = data.X["noise"]
    assert list_ndcg(data, perfect) == pytest.approx(1.0)
    assert list_ndcg(data, -perfect) < 0.6
    weak = [Trial("ranker", {}, 0.8, 0.0)]
    order, scores = ranker_or_generator(data, Ranker(FAST), weak)
    assert order.booster is None and order.order == "als" and order.base == {"als": 1.0}
    assert np.array_equal(order.predict(data.X), perfect)
    assert scores["popularity"] < scores["ranker"] < scores["als"]
    close = [Trial("ranker", {}, scores["als"] * 1.02, 0.0)]  # within the margin: not kept
    assert ranker_or_generator(data, Ranker(FAST), close)[0].order == "als"
    data.X["als_score"] = data.X["noise"]
    strong = [Trial("ranker", {}, 0.99, 0.0)]
    kept, _ = ranker_or_generator(data, Ranker(FAST), strong)
    assert isinstance(kept, Ranker)


def test_a_blend_of_two_generators_replaces_each_alone_when_it_ranks_better() -> None:
    """Each generator sees half of the signal: their blend orders the lists better than
    either, and is chosen over a ranker that is not clearly ahead of it."""
    from training.tuning import Trial, list_ndcg, ranker_or_generator

    data = lists(80, seed=5)
    signal, noise = data.X["signal"].to_numpy(), data.X["noise"].to_numpy()
    rng = np.random.default_rng(6)
    data.X["als_score_z"] = signal + rng.normal(0, 0.3, len(signal))
    data.X["item2item_score_z"] = signal + rng.normal(0, 0.3, len(signal))
    data.X["popularity_score_z"] = noise
    alone = max(list_ndcg(data, data.X[c].to_numpy()) for c in ("als_score_z",
                                                               "item2item_score_z"))
    order, scores = ranker_or_generator(data, Ranker(FAST), [Trial("ranker", {}, alone, 0.0)])
    assert order.order == "blend" and set(order.base) == {"als", "item2item"}
    assert scores["blend"] > alone
    assert list_ndcg(data, order.predict(data.X)) == pytest.approx(scores["blend"])


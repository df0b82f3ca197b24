"""The promotion gate: relative rules, absolute floors and the drift limit."""

import pandas as pd

from recsys.evaluation.gate import (
    DRIFT,
    TRAINING_EVENTS,
    TRAINING_USERS,
    GatePolicy,
    items_drift,
    promotion_decision,
    window_figures,
)

GOOD = {"ranker.ndcg_at_10": 0.30, "popularity.ndcg_at_10": 0.20,
        "ranker.catalog_coverage": 0.2, TRAINING_EVENTS: 5000.0, TRAINING_USERS: 300.0}


def test_a_good_challenger_passes_without_and_with_a_champion() -> None:
    assert promotion_decision(GOOD, 10).passed
    assert promotion_decision(GOOD | {"champion.ndcg_at_10": 0.303}, 10).passed


def test_each_rule_fails_alone_and_names_itself() -> None:
    cases = {
        "popularity": GOOD | {"popularity.ndcg_at_10": 0.31},
        "champion": GOOD | {"champion.ndcg_at_10": 0.40},
        "floor": GOOD | {"ranker.ndcg_at_10": 0.25, "popularity.ndcg_at_10": 0.2},
        "coverage": GOOD | {"ranker.catalog_coverage": 0.001},
        "interactions": GOOD | {TRAINING_EVENTS: 10.0},
        "users": GOOD | {TRAINING_USERS: 3.0},
        "drifted": GOOD | {DRIFT: 0.9},
    }
    policy = GatePolicy(min_ndcg=0.26)
    for word, metrics in cases.items():
        decision = promotion_decision(metrics, 10, policy if word == "floor" else None)
        assert not decision.passed, word
        assert len(decision.failures) == 1 and word in decision.failures[0], decision.failures


def test_a_window_that_is_bad_for_everyone_fails_the_floors() -> None:
    # the champion's recipe retrained on the same poisoned window is as bad: relative rules
    # alone would promote
    poisoned = GOOD | {"ranker.ndcg_at_10": 0.004, "popularity.ndcg_at_10": 0.003,
                       "champion.ndcg_at_10": 0.004}
    decision = promotion_decision(poisoned, 10)
    assert not decision.passed and "floor" in decision.failures[0]


def test_items_drift_is_the_total_variation_of_item_shares() -> None:
    a = pd.DataFrame({"item_id": ["x", "y"], "weight": [1.0, 1.0]})
    assert items_drift(a, a) == 0.0
    assert items_drift(a, pd.DataFrame({"item_id": ["z"], "weight": [2.0]})) == 1.0
    half = pd.DataFrame({"item_id": ["x", "z"], "weight": [1.0, 1.0]})
    assert items_drift(a, half) == 0.5


def test_window_figures_count_the_training_part_and_compare_with_the_champions() -> None:
    stamps = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-10"], utc=True)
    interactions = pd.DataFrame({"user_id": ["a", "b", "b", "c"], "item_id": ["x", "x", "y", "z"],
                                 "weight": 1.0, "timestamp": stamps})
    cut = pd.Timestamp("2026-01-05", tz="UTC")
    figures = window_figures(interactions, cut, None)
    assert figures == {TRAINING_EVENTS: 3.0, TRAINING_USERS: 2.0}
    same = window_figures(interactions, cut, (stamps[0], stamps[2]))
    assert same[DRIFT] == 0.0

"""Ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.evaluation.metrics import (
    catalog_coverage,
    evaluate_rankings,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    popularity_bias,
    precision_at_k,
    recall_at_k,
)

LOG2_3 = math.log2(3)


def test_hits_at_ranks_one_and_three_of_three_relevant() -> None:
    recs, rel = ["a", "b", "c", "d"], {"a", "c", "x"}
    assert precision_at_k(recs, rel, 3) == pytest.approx(2 / 3)
    assert recall_at_k(recs, rel, 3) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # hits at ranks 1 and 3: 1 + 0.5
    idcg = 1 / math.log2(2) + 1 / LOG2_3 + 1 / math.log2(4)  # three relevant fill ranks 1..3
    assert ndcg_at_k(recs, rel, 3) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(recs, rel, 3) == pytest.approx(1.5 / 2.1309297535714573)
    # precision@1 = 1/1 and precision@3 = 2/3 at the hit ranks, over min(3, 3)
    assert map_at_k(recs, rel, 3) == pytest.approx((1 + 2 / 3) / 3)
    assert hit_rate_at_k(recs, rel, 3) == 1.0


def test_more_relevant_than_k() -> None:
    recs, rel = ["a", "b", "c"], {"a", "c", "x", "y", "z"}
    assert recall_at_k(recs, rel, 3) == pytest.approx(2 / 5)  # denominator is |relevant|
    assert map_at_k(recs, rel, 3) == pytest.approx((1 + 2 / 3) / 3)  # over min(5, 3)
    assert ndcg_at_k(recs, rel, 3) == pytest.approx(1.5 / (1 + 1 / LOG2_3 + 0.5))


def test_fewer_relevant_than_k() -> None:
    recs, rel = ["b", "a", "c"], {"a"}
    assert precision_at_k(recs, rel, 3) == pytest.approx(1 / 3)
    assert recall_at_k(recs, rel, 3) == 1.0
    assert ndcg_at_k(recs, rel, 3) == pytest.approx(1 / LOG2_3)  # ideal DCG is 1
    assert map_at_k(recs, rel, 3) == pytest.approx(0.5)  # precision@2 = 1/2, over min(1, 3)


def test_short_list_is_padded_with_misses() -> None:
    recs, rel = ["a"], {"a", "b"}
    assert precision_at_k(recs, rel, 5) == pytest.approx(1 / 5)  # denominator stays k
    assert recall_at_k(recs, rel, 5) == pytest.approx(1 / 2)
    assert ndcg_at_k(recs, rel, 5) == pytest.approx(1 / (1 + 1 / LOG2_3))
    assert map_at_k(recs, rel, 5) == pytest.approx(1 / 2)


def test_no_hit_and_no_relevant_score_zero() -> None:
    for metric in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k, hit_rate_at_k):
        assert metric(["a", "b"], {"z"}, 2) == 0.0
        assert metric(["a", "b"], set(), 2) == 0.0


def test_perfect_ranking_scores_one() -> None:
    recs, rel = ["a", "b", "c"], {"a", "b", "c"}
    for metric in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k, hit_rate_at_k):
        assert metric(recs, rel, 3) == pytest.approx(1.0)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="repeats"):
        precision_at_k(["a", "a"], {"a"}, 2)
    with pytest.raises(ValueError, match="positive"):
        ndcg_at_k(["a"], {"a"}, 0)
    with pytest.raises(ValueError, match="catalog_size"):
        catalog_coverage([["a"]], 1, 0)


def test_catalog_coverage() -> None:
    # top-2 lists cover {a, b, d}: 3 of 10 items
    assert catalog_coverage([["a", "b", "c"], ["a", "d"]], 2, 10) == pytest.approx(0.3)


def test_popularity_bias_is_mean_percentile() -> None:
    popularity = {"a": 10.0, "b": 5.0, "c": 1.0, "d": 0.0}
    # items strictly less popular: a 3/4, b 2/4, c 1/4, unknown e (popularity 0) 0/4
    assert popularity_bias([["a", "b"], ["c", "e"]], 2, popularity) == pytest.approx(1.5 / 4)


def test_evaluate_rankings_averages_over_users_with_relevant_items() -> None:
    recommended = {"u1": ["a", "b", "c"], "u2": ["a"], "u4": ["q"]}
    relevant = {"u1": {"a", "c", "x"}, "u2": set(), "u3": {"a"}}
    result = evaluate_rankings(
        recommended, relevant, 3, catalog_size=6, item_popularity={"a": 2.0, "b": 1.0, "c": 0.0}
    )
    # u2 (nothing relevant) and u4 (not in relevant) are ignored; u3 has no list and scores 0
    assert result["n_users"] == 2
    assert result["precision_at_3"] == pytest.approx((2 / 3 + 0) / 2)
    assert result["map_at_3"] == pytest.approx((1 + 2 / 3) / 3 / 2)
    assert result["hit_rate_at_3"] == pytest.approx(0.5)
    assert result["catalog_coverage"] == pytest.approx(3 / 6)
    # percentiles a 2/3, b 1/3, c 0/3 over u1's three slots
    assert result["popularity_bias"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no user"):
        evaluate_rankings(recommended, {"u2": set()}, 3, catalog_size=6)


def test_vectorised_average_matches_per_user_functions() -> None:
    rng = np.random.default_rng(0)
    catalog = [f"i{j}" for j in range(50)]
    recommended, relevant = {}, {}
    for user in range(200):
        recommended[f"u{user}"] = list(rng.choice(catalog, rng.integers(0, 12), replace=False))
        relevant[f"u{user}"] = set(rng.choice(catalog, rng.integers(1, 20), replace=False))
    result = evaluate_rankings(recommended, relevant, 10, catalog_size=50)
    for name, metric in [
        ("precision", precision_at_k),
        ("recall", recall_at_k),
        ("ndcg", ndcg_at_k),
        ("map", map_at_k),
        ("hit_rate", hit_rate_at_k),
    ]:
        expected = np.mean([metric(recommended[u], relevant[u], 10) for u in relevant])
        assert result[f"{name}_at_10"] == pytest.approx(expected)

"""The candidate grid's shared work: one EASE solve per (l2, dropout), ALS screened before
full fits, item-kNN above the catalog bound; DLAE's weights."""

import numpy as np
import pandas as pd
import pytest

import training.tuning
from recsys.evaluation.protocols import binary_interactions, make_fold
from recsys.models.item_to_item import EASECandidates, ease_weights, gram_of
from recsys.models.matrix import InteractionMatrix
from training.tuning import (
    ALS_FINALISTS,
    ALS_GRID,
    ALS_ITERATIONS,
    ALS_SCREEN_ITERATIONS,
    EASE_GRID,
    EASE_SYSTEMS,
    tune_candidates,
)


def block_events(n_users: int = 80, block: int = 15, per_user: int = 8) -> pd.DataFrame:
    """Two taste groups, each rating items of its own block only."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(n_users):
        offset = 0 if user % 2 else block
        for step, item in enumerate(rng.choice(block, per_user, replace=False) + offset):
            rows.append((f"u{user}", f"i{item}", pd.Timestamp("2026-01-01", tz="UTC")
                         + pd.Timedelta(days=step, minutes=user)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame.assign(event_id=[f"e{i}" for i in range(len(frame))], event_type="view",
                        value=np.nan, context="{}")


def test_ease_with_a_shared_solve_equals_its_own_fit() -> None:
    interactions = binary_interactions(block_events())
    own = EASECandidates(l2=50.0, half_life_events=5.0).fit(interactions)
    weights = ease_weights(gram_of(InteractionMatrix.from_frame(interactions)), 50.0)
    shared = EASECandidates(l2=50.0, half_life_events=5.0).fit_with_weights(interactions, weights)
    assert np.allclose(own.weights, shared.weights)
    users = ["u1", "u2", "u3"]
    assert shared.recommend(users, 5).keys() == own.recommend(users, 5).keys()
    for user in users:
        assert shared.recommend(users, 5)[user][0] == own.recommend(users, 5)[user][0]


def test_dlae_weights_solve_the_dropout_regression_and_zero_dropout_is_ease() -> None:
    gram = gram_of(InteractionMatrix.from_frame(binary_interactions(block_events())))
    assert np.array_equal(ease_weights(gram, 50.0, 0.0), ease_weights(gram, 50.0))
    penalty = np.diag(50.0 + 0.5 / (1 - 0.5) * np.diag(gram))
    expected = np.linalg.solve(gram + penalty, gram)  # argmin |X - XB|^2 + |L^1/2 B|^2
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(ease_weights(gram, 50.0, 0.5), expected, atol=1e-5)
    with pytest.raises(ValueError, match="dropout"):
        ease_weights(gram, 50.0, 1.0)


def test_the_grid_solves_ease_once_per_system_and_screens_als(monkeypatch) -> None:
    solves = []
    original = training.tuning.ease_weights
    monkeypatch.setattr(training.tuning, "ease_weights", lambda gram, l2, dropout: (
        solves.append((l2, dropout)) or original(gram, l2, dropout)))
    fold = make_fold(block_events(), "temporal", 0)
    params, trials = tune_candidates(fold, 5)
    assert sorted(solves) == sorted(EASE_SYSTEMS)
    als = [t for t in trials if t.generator == "als"]
    screened = [t for t in als if t.params["iterations"] == ALS_SCREEN_ITERATIONS]
    finals = [t for t in als if t.params["iterations"] == ALS_ITERATIONS]
    assert len(screened) == len(ALS_GRID) and len(finals) == ALS_FINALISTS
    best_screened = sorted(screened, key=lambda t: -t.ndcg)[:ALS_FINALISTS]
    assert {tuple(t.params.values())[:3] for t in finals} == {
        tuple(t.params.values())[:3] for t in best_screened}
    chosen = max(finals, key=lambda t: t.ndcg).params
    assert (params.als_factors, params.als_iterations) == (chosen["factors"], ALS_ITERATIONS)
    ease = [t for t in trials if t.generator == "ease"]
    assert len(ease) == len(EASE_GRID)
    best = max(ease, key=lambda t: t.ndcg).params
    assert (params.ease_l2, params.ease_dropout) == (best["l2"], best["dropout"])


def test_above_the_catalog_bound_item_knn_is_tuned_instead(monkeypatch) -> None:
    monkeypatch.setattr(training.tuning, "EASE_MAX_ITEMS", 10)
    monkeypatch.setattr(training.tuning, "ease_weights", lambda *a: pytest.fail("EASE solved"))
    fold = make_fold(block_events(), "temporal", 0)
    params, trials = tune_candidates(fold, 5)
    knn = [t for t in trials if t.generator == "ease"]
    assert {t.params["half_life_events"] for t in knn} == {h for _, _, h in EASE_GRID}
    assert all(t.params["neighbours"] == training.tuning.KNN_NEIGHBOURS for t in knn)
    assert params.ease_half_life_events == max(knn, key=lambda t: t.ndcg).params[
        "half_life_events"]


def test_settings_are_scored_on_one_seeded_sample_of_many_users(monkeypatch) -> None:
    fold = make_fold(block_events(), "temporal", 0)
    assert training.tuning.scored_users(fold) is fold.relevant  # few users: all of them
    monkeypatch.setattr(training.tuning, "TUNING_USERS", 10)
    sample = training.tuning.scored_users(fold)
    assert len(sample) == 10 and sample == training.tuning.scored_users(fold)
    assert all(fold.relevant[user] == items for user, items in sample.items())

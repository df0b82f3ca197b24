"""The LambdaRank ranker and its feature matrix on lists whose right order is known."""

import numpy as np
import pandas as pd
import pytest

from recsys.features.ranker_inputs import category_match, feature_matrix, recent_similarity
from recsys.models.ranker import Ranker, RankerFitError, RankerParams


def lists(n_users: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per user 10 candidates; relevance is 1 exactly when the feature `signal` > 0.5."""
    rng = np.random.default_rng(seed)
    rows = n_users * 10
    X = pd.DataFrame({"signal": rng.random(rows), "noise": rng.random(rows)})
    y = (X["signal"] > 0.5).astype(int).to_numpy()
    return X, y, np.full(n_users, 10)


def test_ranker_learns_the_informative_feature_and_round_trips(tmp_path) -> None:
    X, y, groups = lists(200, seed=1)
    ranker = Ranker(RankerParams(n_estimators=50, min_child_samples=5)).fit(X, y, groups)
    Xt, yt, _ = lists(50, seed=2)
    scores = ranker.predict(Xt)
    assert scores[yt == 1].min() > scores[yt == 0].max()
    importance = ranker.feature_importance()
    assert next(iter(importance)) == "signal"
    ranker.save(tmp_path)
    assert np.allclose(Ranker.load(tmp_path).predict(Xt), scores)


def test_a_base_order_travels_with_the_ranker_through_save_and_load(tmp_path) -> None:
    """A fixed order (no booster) and a booster over it score the same after a round trip,
    from a frame or from a matrix in feature order (the service's), a candidate the base
    generator did not retrieve (NaN) counting below every one it did."""
    X, y, groups = lists(200, seed=3)
    X["als_score_z"] = X["noise"]
    X.loc[::7, "als_score_z"] = np.nan
    fixed = Ranker.fixed({"als": 1.0}, list(X.columns))
    scores = fixed.predict(X)
    assert fixed.order == "als" and fixed.feature_importance() == {}
    assert np.array_equal(scores[X["als_score_z"].notna()], X["als_score_z"].dropna())
    assert scores[X["als_score_z"].isna()].max() < scores[X["als_score_z"].notna()].min()
    corrected = Ranker(RankerParams(n_estimators=30, min_child_samples=5),
                       base={"als": 1.0}).fit(X, y, groups)
    assert corrected.order == "ranker_over_als"
    for model, where in ((fixed, tmp_path / "fixed"), (corrected, tmp_path / "corrected")):
        model.save(where)
        loaded = Ranker.load(where)
        assert loaded.order == model.order
        assert np.allclose(loaded.predict(X), model.predict(X))
        assert np.allclose(loaded.predict(X.to_numpy(np.float32)), model.predict(X), atol=1e-5)
    assert not (tmp_path / "fixed" / "ranker.txt").exists()


def test_ranker_refuses_lists_without_positives() -> None:
    X, _, groups = lists(5, seed=1)
    with pytest.raises(RankerFitError, match="no positive"):
        Ranker().fit(X, np.zeros(len(X)), groups)
    with pytest.raises(RankerFitError, match="group sizes"):
        Ranker().fit(X, np.ones(len(X)), np.array([3]))


def test_category_match_averages_affinity_over_item_categories() -> None:
    onehot = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
    # the last item's only category lies beyond the user's affinity vector: unknown
    assert np.allclose(category_match([0.7, 0.2, 0.1], onehot), [0.4, 0.0, 0.0])
    assert np.allclose(category_match(None, onehot), [0.0, 0.0, 0.0])


def test_recent_similarity_uses_unit_vectors_and_skips_the_item_itself() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)  # a, b, c
    has_vector = np.ones(3, dtype=bool)
    mean, best = recent_similarity(vectors, has_vector, np.array([2, 0]), np.array([0, 1]))
    assert np.allclose(mean, [0.7, 0.0]) and np.allclose(best, [0.8, 0.0])
    alone = recent_similarity(vectors, has_vector, np.array([0]), np.array([0, -1]))
    assert np.allclose(alone, [[0.0], [0.0]])  # only itself and an unknown item: nothing


def test_feature_matrix_keeps_numbers_and_derives_array_features() -> None:
    frame = pd.DataFrame({
        "user_id": ["u"], "item_id": ["a"], "als_score": [0.3],
        "user_activity__category_affinity": [[0.5, 0.5]],
        "item_stats__category_ids": [[1]],
        "user_recent__recent_items": [["b"]],
    })
    X = feature_matrix(frame, {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 0.0])})
    assert list(X.columns) == ["als_score", "als_score_z", "category_match", "recent_sim_mean",
                               "recent_sim_max"]
    assert X["als_score_z"].tolist() == [0.0]  # one score in its list: standardized to 0
    assert X.iloc[0].tolist() == pytest.approx([0.3, 0.0, 0.5, 1.0, 1.0])

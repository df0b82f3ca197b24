"""The lleaves-compiled ranker scores exactly as LightGBM and is compiled once per model."""

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from recsys.models.compiled_ranker import CompiledRanker, compile_ranker


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    relevance = (X[:, 0] + 0.5 * np.nan_to_num(X[:, 1]) > 0.3).astype(int)
    data = lgb.Dataset(X, relevance, group=[20] * 30)
    params = {"objective": "lambdarank", "num_leaves": 7, "min_data_in_leaf": 5, "verbose": -1,
              "num_threads": 1, "seed": 1}
    return lgb.train(params, data, num_boost_round=25)


def test_compiled_scores_equal_lightgbm(booster: lgb.Booster, tmp_path: Path) -> None:
    X = np.random.default_rng(4).normal(size=(200, 6)).astype(np.float32)
    X[5, 2] = np.nan
    compiled = CompiledRanker(booster, tmp_path)
    np.testing.assert_allclose(compiled.predict(X), booster.predict(X, num_threads=1),
                               rtol=1e-6, atol=1e-9)


def test_second_load_reuses_the_compiled_object(booster: lgb.Booster, tmp_path: Path) -> None:
    CompiledRanker(booster, tmp_path)
    objects = list(tmp_path.glob("*.o"))
    assert len(objects) == 1
    stamp = objects[0].stat().st_mtime_ns
    CompiledRanker(booster, tmp_path)
    assert objects[0].stat().st_mtime_ns == stamp
    assert len(list(tmp_path.glob("*.o"))) == 1


def test_unbuildable_compiled_ranker_falls_back_to_none(booster: lgb.Booster,
                                                        tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert compile_ranker(booster, blocker / "cache") is None

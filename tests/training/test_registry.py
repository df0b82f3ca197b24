"""MLflow registry: a recommender round-trips through a registered pyfunc; aliases move."""

import mlflow
import pytest
from mlflow import MlflowClient

from recsys.events.synthetic import WorldConfig, generate_world
from recsys.features.interactions import to_interactions
from recsys.models.recommender import CandidateParams, Recommender, build_candidates
from recsys.models.registry import (
    CHAMPION,
    PREVIOUS,
    alias_version,
    load_recommender,
    log_recommender,
    promote,
    rollback,
)


@pytest.fixture(scope="module")
def recommender() -> Recommender:
    world = generate_world(WorldConfig(n_users=60, n_items=40, days=10, seed=3))
    interactions = to_interactions(world.events)
    candidates = build_candidates(CandidateParams(n_per_generator=10, als_factors=8), 40)
    return Recommender(candidates.fit(interactions), None, world.items, {"feature_service": "x"})


@pytest.fixture()
def client(tmp_path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("test")
    return MlflowClient(uri)


def register(recommender: Recommender) -> str:
    with mlflow.start_run() as run:
        pass
    return log_recommender(recommender, "recs", run.info.run_id).version


def test_registered_model_loads_back_identically(client, recommender) -> None:
    version = register(recommender)
    loaded = load_recommender(f"models:/recs/{version}")
    users = ["u1", "u2", "u3"]
    assert loaded.candidates.candidates(users).equals(recommender.candidates.candidates(users))
    assert loaded.manifest == {"feature_service": "x"}


def test_promotion_and_rollback_move_aliases(client, recommender) -> None:
    assert alias_version(client, "recs", CHAMPION) is None
    v1, v2 = register(recommender), register(recommender)
    assert promote(client, "recs", v1) is None
    assert promote(client, "recs", v2) == v1
    assert alias_version(client, "recs", CHAMPION).version == v2
    assert alias_version(client, "recs", PREVIOUS).version == v1
    assert rollback(client, "recs") == v1
    assert alias_version(client, "recs", CHAMPION).version == v1
    assert alias_version(client, "recs", PREVIOUS).version == v2


def test_rollback_without_previous_champion_fails_loudly(client, recommender) -> None:
    promote(client, "recs", register(recommender))
    with pytest.raises(LookupError, match="no previous champion"):
        rollback(client, "recs")

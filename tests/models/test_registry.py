"""MLflow registry: a recommender round-trips through a registered pyfunc; aliases move."""

import sys

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
    client = MlflowClient(uri)
    # artifacts under tmp_path too: MLflow's default is ./mlruns in the working directory
    client.create_experiment("test", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment("test")
    return client


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


LEGACY_WRAPPER = '''
import sys

import mlflow


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """The wrapper as models registered before the re-lay pickled it (training.registry)."""

    def load_context(self, context):
        raise RuntimeError("the current code must not run a legacy wrapper")
'''


def test_a_version_registered_by_the_earlier_layout_loads(client, recommender, tmp_path,
                                                          monkeypatch) -> None:
    """The pickled wrapper names a module that no longer exists; the bundle still loads."""
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "legacy_registry.py").write_text(LEGACY_WRAPPER)
    monkeypatch.syspath_prepend(str(legacy))
    import legacy_registry

    bundle = tmp_path / "bundle"
    recommender.save(bundle)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="recommender",
                                       python_model=legacy_registry.RecommenderPyfunc(),
                                       artifacts={"bundle": str(bundle)})
    version = mlflow.register_model(info.model_uri, "recs").version
    monkeypatch.delitem(sys.modules, "legacy_registry")
    sys.path.remove(str(legacy))  # the wrapper's module is gone, as after the re-lay

    loaded = load_recommender(f"models:/recs/{version}")
    users = ["u1", "u2", "u3"]
    assert loaded.candidates.candidates(users).equals(recommender.candidates.candidates(users))
    with pytest.raises(ModuleNotFoundError):
        mlflow.pyfunc.load_model(f"models:/recs/{version}")

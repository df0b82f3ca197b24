"""Values handed between pipeline steps round-trip through plain files, never a pickle."""

import json

import numpy as np
import pandas as pd
import pytest

from recsys.models.item_to_item import EASECandidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.union import UnionCandidates
from recsys.platform.artifacts import MANIFEST, load_artifact, save_artifact
from training.train import TrainingConfig, TrainingData, training_data


def events(n_days: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({
        "event_id": [f"e{i}" for i in range(n)],
        "user_id": [f"u{u}" for u in rng.integers(0, 30, n)],
        "item_id": [f"i{i}" for i in rng.integers(0, 15, n)],
        "event_type": "view", "value": np.nan,
        "timestamp": pd.Timestamp("2026-01-01", tz="UTC")
        + pd.to_timedelta(rng.uniform(0, n_days, n), unit="D"),
        "context": "{}",
    })


def test_training_data_round_trips_with_its_frames_windows_and_config(tmp_path) -> None:
    catalog = pd.DataFrame({"item_id": [f"i{i}" for i in range(15)],
                            "categories": [["a", "b"]] * 15})
    data = training_data(events(), catalog, TrainingConfig(seed=7))
    save_artifact(data, tmp_path / "training_data")
    back = load_artifact(tmp_path / "training_data")
    assert isinstance(back, TrainingData)
    pd.testing.assert_frame_equal(back.interactions, data.interactions)
    assert back.catalog["categories"].map(list).tolist() == [["a", "b"]] * 15
    assert back.windows == data.windows
    assert back.config == data.config
    assert not list((tmp_path / "training_data").rglob("*.pkl"))


def test_models_are_written_by_their_own_save(tmp_path) -> None:
    frame = events()[["user_id", "item_id"]]
    union = UnionCandidates([PopularityCandidates(), EASECandidates(l2=10.0)], 5).fit(frame)
    save_artifact(union, tmp_path / "candidates")
    spec = json.loads((tmp_path / "candidates" / MANIFEST).read_text())
    assert spec["saved"] == "recsys.models.union:UnionCandidates"
    back = load_artifact(tmp_path / "candidates")
    users = sorted(frame["user_id"].unique())
    pd.testing.assert_frame_equal(back.candidates(users), union.candidates(users))


def test_none_and_plain_values_round_trip(tmp_path) -> None:
    save_artifact(None, tmp_path / "nothing")
    assert load_artifact(tmp_path / "nothing") is None
    value = {"k": 10, "metrics": {"ranker.ndcg_at_10": 0.3},
             "at": pd.Timestamp("2026-01-01T00:00Z")}
    save_artifact(value, tmp_path / "plain")
    assert load_artifact(tmp_path / "plain") == value


def test_a_failed_save_keeps_the_previous_artifact(tmp_path) -> None:
    save_artifact({"version": 1}, tmp_path / "a")
    with pytest.raises(TypeError, match="cannot save"):
        save_artifact({"version": 2, "bad": object()}, tmp_path / "a")
    assert load_artifact(tmp_path / "a") == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


def test_an_artifact_cannot_name_code_outside_the_project(tmp_path) -> None:
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / MANIFEST).write_text(json.dumps(
        {"dataclass": "os:system", "fields": {}}))
    with pytest.raises(TypeError, match="outside the project"):
        load_artifact(tmp_path / "evil")

"""The Dagster code location loads, and its jobs, schedule and sensors behave."""

import json

import dagster as dg
import pandas as pd
import pytest

from orchestration.defs.resources import PlatformStorage
from orchestration.defs.sensors import event_log_sensor, inbox_sensor
from recsys.events.event_log import EventLog

EXPECTED_ASSETS = {
    "event_source", "raw_events", "validated_events", "training_window", "user_features",
    "item_features",
    "feature_registry", "online_features", "training_data", "base_candidates", "ranker_model",
    "holdout_candidates", "champion_recipe_model", "model_evaluation", "serving_candidates",
    "registered_model", "champion_model", "candidate_lists", "bento_model",
    "experiment_decisions",
}


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs


def test_every_asset_is_defined_in_its_group(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.path[-1] for key in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    groups = {graph.get(dg.AssetKey(name)).group_name for name in EXPECTED_ASSETS}
    assert groups == {"ingestion", "features", "training", "evaluation", "deployment",
                      "experiments"}


def test_every_model_fit_is_an_asset_of_the_graph(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()

    def upstream(name: str) -> set[str]:
        return {key.path[-1] for key in graph.get(dg.AssetKey(name)).parent_keys}

    assert upstream("ranker_model") == {"training_data", "base_candidates"}
    assert {"holdout_candidates", "ranker_model", "champion_recipe_model"} <= upstream(
        "model_evaluation")
    assert {"serving_candidates", "ranker_model", "model_evaluation"} <= upstream(
        "registered_model")


def test_the_platform_job_leaves_experiments_to_their_sensor(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def("platform_job")
    assert "experiment_decisions" not in {node.name for node in job.graph.node_defs}


def test_every_job_resolves(defs: dg.Definitions) -> None:
    for name in ("platform_job", "ingestion_job", "import_job", "retrain_job",
                 "experiment_job", "create_experiment_job"):
        assert defs.resolve_job_def(name).name == name


def test_promotion_gate_and_data_checks_are_blocking(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    checks = {key.name for key in graph.asset_check_keys}
    assert {"promotion_gate", "validated_events_suite", "quarantine_share",
            "training_window_suite"} <= checks
    blocking = {key.name for key in graph.asset_check_keys
                if graph.get_check_spec(key).blocking}
    assert {"promotion_gate", "validated_events_suite", "training_window_suite"} <= blocking
    retrain = defs.resolve_job_def("retrain_job").asset_layer.asset_graph
    assert dg.AssetKey("training_window") in retrain.get_all_asset_keys()


def test_freshness_and_drift_checks_warn_and_a_sensor_runs_the_freshness_checks(
        defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    by_asset = {(key.asset_key.path[-1], key.name): graph.get_check_spec(key)
                for key in graph.asset_check_keys}
    for asset in ("user_features", "item_features", "online_features"):
        assert not by_asset[(asset, "freshness_check")].blocking
    assert not by_asset[("training_window", "training_window_drift")].blocking
    sensor = defs.resolve_sensor_def("freshness_checks_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_daily_schedule_targets_retraining(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("daily_retrain")
    assert schedule.cron_schedule == "30 2 * * *"
    assert schedule.job_name == "retrain_job"


def test_inbox_sensor_imports_each_new_file_once(tmp_path) -> None:
    storage = PlatformStorage(data_dir=str(tmp_path))
    inbox = storage.settings.inbox_dir
    inbox.mkdir(parents=True)
    (inbox / "events.csv").write_text("user_id,item_id,timestamp\nu1,i1,2026-11-01T00:00:00Z\n")
    (inbox / "notes.txt").write_text("not events")
    context = dg.build_sensor_context(resources={"storage": storage})
    first = inbox_sensor(context)
    assert len(first.run_requests) == 1
    config = first.run_requests[0].run_config["ops"]["event_source"]["config"]
    assert config["kind"] == "events" and config["path"].endswith("events.csv")
    again = inbox_sensor(dg.build_sensor_context(resources={"storage": storage},
                                                 cursor=first.cursor))
    assert again.run_requests == []
    assert json.loads(first.cursor).keys() == {"events.csv"}


def test_event_log_sensor_requests_changed_days(tmp_path) -> None:
    storage = PlatformStorage(data_dir=str(tmp_path))
    log = EventLog(storage.settings.event_log_dir)
    frame = pd.DataFrame({
        "event_id": ["a", "b"], "user_id": ["u1", "u2"], "item_id": ["i1", "i2"],
        "event_type": ["view", "view"], "value": [float("nan")] * 2,
        "timestamp": pd.to_datetime(["2026-11-01T10:00Z", "2026-11-03T10:00Z"], utc=True),
        "context": ["{}", "{}"],
    })
    log.append(frame)
    result = event_log_sensor(dg.build_sensor_context(resources={"storage": storage}))
    assert sorted(r.partition_key for r in result.run_requests) == ["2026-11-01", "2026-11-03"]
    again = event_log_sensor(dg.build_sensor_context(resources={"storage": storage},
                                                     cursor=result.cursor))
    assert float(again.cursor) >= float(result.cursor)

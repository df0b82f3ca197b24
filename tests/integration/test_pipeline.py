"""The Dagster pipeline's results: quarantine, features online, MLflow registry, Bento model."""

import subprocess
import sys
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from recsys.features.store import get_feature_store
from recsys.models.registry import CHALLENGER, CHAMPION
from tests.integration.conftest import BAD_ROWS, Platform

pytestmark = pytest.mark.integration


def test_bad_rows_are_quarantined_with_reasons_and_nothing_is_lost(platform: Platform) -> None:
    warehouse = platform.settings.warehouse_dir
    raw = pd.read_parquet(warehouse / "raw_events")
    valid = pd.read_parquet(warehouse / "validated_events")
    quarantined = pd.concat(
        pd.read_parquet(p) for p in platform.settings.quarantine_dir.glob("date=*.parquet")
    )
    assert len(raw) == len(valid) + len(quarantined)
    reasons = dict(zip(quarantined["event_id"], quarantined["reason"], strict=True))
    assert set(BAD_ROWS["event_id"]) <= set(reasons)
    assert "event_type" in reasons["bad-type"]
    assert "value" in reasons["bad-rating"]
    assert "user_id" in reasons["bad-user"]
    assert not set(BAD_ROWS["event_id"]) & set(valid["event_id"])


def test_online_store_serves_materialized_features(platform: Platform) -> None:
    store = get_feature_store(platform.settings)
    valid = pd.read_parquet(platform.settings.warehouse_dir / "validated_events")
    user = valid["user_id"].value_counts().index[0]
    row = store.get_online_features(
        features=store.get_feature_service("user_context_v1"), entity_rows=[{"user_id": user}],
        full_feature_names=True,
    ).to_dict()
    seen = set(row["user_history__seen_items"][0])
    assert seen and seen <= set(valid.loc[valid["user_id"] == user, "item_id"])


def test_champion_is_registered_with_ndcg_for_ranker_and_popularity(platform: Platform) -> None:
    client = MlflowClient(platform.settings.tracking_uri)
    champion = client.get_model_version_by_alias(platform.settings.model_name, CHAMPION)
    challenger = client.get_model_version_by_alias(platform.settings.model_name, CHALLENGER)
    assert champion.version == challenger.version
    metrics = client.get_run(champion.run_id).data.metrics
    assert metrics["ranker.ndcg_at_10"] > metrics["popularity.ndcg_at_10"] > 0
    # ranker_model chose its order as the offline evaluation does, and MLflow holds the choice
    order = client.get_run(champion.run_id).data.params["ranker.order"]
    options = {k.removeprefix("training.order_ndcg."): v for k, v in metrics.items()
               if k.startswith("training.order_ndcg.")}
    assert {"ranker", "als", "popularity"} <= set(options) and order in options
    tags = client.get_run(champion.run_id).data.tags
    assert tags["feature_service"] == "ranker_v2"
    artifacts = {a.path for a in client.list_artifacts(champion.run_id)}
    assert {"ndcg_at_k.png", "evaluation.csv", "training_config.json"} <= artifacts


def test_dagster_recorded_every_asset_and_passing_checks(platform: Platform) -> None:
    from orchestration.definitions import defs

    instance = dg.DagsterInstance.get()
    ran = {key for name in ("import_job", "platform_job")
           for key in defs.resolve_job_def(name).asset_layer.selected_asset_keys}
    graph = defs.resolve_asset_graph()
    # Only the experiment decisions are left out: their sensor materializes them while an
    # experiment runs, not the platform's jobs.
    assert {key.path[0] for key in graph.get_all_asset_keys() - ran} == {"experiment_decisions"}
    for key in ran:
        if key.path[0] in ("raw_events", "validated_events"):
            assert instance.get_materialized_partitions(key), key
        else:
            assert instance.get_latest_materialization_event(key) is not None, key
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("registered_model"), "promotion_gate"), limit=1
    )
    assert records and records[0].status.value == "SUCCEEDED"


def test_feast_cli_apply_and_materialize_incremental(platform: Platform, redis_url: str) -> None:
    """The Feast CLI, run in a repo with the project's yaml and definitions, reaches Redis."""
    repo = platform.settings.feature_repo_dir
    source = platform.settings.feature_repo_dir.parent / "cli-repo"
    source.mkdir(exist_ok=True)
    from recsys.platform.settings import PROJECT_ROOT

    for name in ("feature_store.yaml", "definitions.py"):
        (source / name).write_text((PROJECT_ROOT / "feature_repo" / name).read_text())
    (source / "data").symlink_to(repo / "data", target_is_directory=True)
    feast = [sys.executable, "-m", "feast.cli.cli"]
    applied = subprocess.run([*feast, "apply"], capture_output=True, text=True, timeout=300,
                             cwd=source)
    assert applied.returncode == 0, applied.stderr[-2000:]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    done = subprocess.run([*feast, "materialize-incremental", now], capture_output=True,
                          text=True, timeout=300, cwd=source)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "item_stats" in done.stdout


def test_a_poisoned_window_stops_retrain_job_and_keeps_the_champion(platform: Platform) -> None:
    """A duplicate event and a negative price planted in the warehouse: the blocking data
    check on the training window stops the job before any feature or model is rebuilt."""
    from orchestration.definitions import defs

    client = MlflowClient(platform.settings.tracking_uri)
    name = platform.settings.model_name
    champion = client.get_model_version_by_alias(name, CHAMPION).version
    versions = len(client.search_model_versions(f"name='{name}'"))
    day = sorted((platform.settings.warehouse_dir / "validated_events").glob("date=*"))[-1]
    rows = pd.read_parquet(day / "part.parquet").head(1)
    planted = day / "planted.parquet"
    pd.concat([rows, rows.assign(event_id="planted-negative", event_type="purchase",
                                 value=-5.0)]).to_parquet(planted, index=False)
    try:
        result = defs.resolve_job_def("retrain_job").execute_in_process(
            instance=dg.DagsterInstance.get(), raise_on_error=False)
    finally:
        planted.unlink()
    assert not result.success
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["training_window_suite"] is False
    assert set(checks) <= {"training_window_suite", "training_window_drift"}  # nothing later
    built = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert built == {"training_window"}
    assert client.get_model_version_by_alias(name, CHAMPION).version == champion
    assert len(client.search_model_versions(f"name='{name}'")) == versions

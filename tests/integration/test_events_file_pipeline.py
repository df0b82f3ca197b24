"""``python -m orchestration.run --source events`` on a file without a catalog: item features
come from the events, years of daily partitions go in one run, and a champion is promoted."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from recsys.events.sample_files import FileShape, write_events_folder
from recsys.models.registry import CHAMPION
from recsys.platform.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_an_events_file_without_catalog_gets_a_champion(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 10,000 ratings over 10 years, item and user ids that look like numbers, no catalog.
    folder = write_events_folder(tmp_path / "input", FileShape())
    data = tmp_path / "data"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "RECSYS_DATA_DIR": str(data), "RECSYS_FEATURE_REPO_DIR":
           str(tmp_path / "repo"), "REDIS_URL": redis_url, "DAGSTER_HOME": str(data / "dagster"),
           "BENTOML_HOME": str(data / "bentoml"), "MLFLOW_TRACKING_URI": tracking}
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.run", "--source", "events", "--path",
         str(folder / "events.csv")], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    champion = MlflowClient(tracking).get_model_version_by_alias("recsys", CHAMPION)
    metrics = MlflowClient(tracking).get_run(champion.run_id).data.metrics
    assert metrics["ranker.ndcg_at_10"] > metrics["popularity.ndcg_at_10"]
    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster"))
    with dg.DagsterInstance.from_config(str(data / "dagster")) as instance:
        runs = instance.get_run_records(dg.RunsFilter(job_name="platform_job"))
        assert len(runs) == 1  # ten years of daily partitions, one run
        days = instance.get_materialized_partitions(dg.AssetKey("validated_events"))
        assert len(days) > 9 * 365

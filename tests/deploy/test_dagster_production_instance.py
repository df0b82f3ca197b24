"""The production Dagster instance (orchestration/instance/dagster-postgres.yaml) passes
Dagster's instance schema with a queued run coordinator that runs one training run at a time;
the jobs that train carry the tag; the Kubernetes alternative passes dagster-k8s's schema."""

from pathlib import Path

import dagster as dg
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator

from orchestration.defs import jobs
from orchestration.defs.jobs import TRAINING_TAGS
from orchestration.instance import TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
TRAINING_LIMIT = {"key": "recsys/job", "value": "training", "limit": 1}


def test_dagster_production_template_passes_the_instance_schema(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RECSYS_DAGSTER_POSTGRES_URL", "postgresql+psycopg2://u@db/dagster")
    (tmp_path / "dagster.yaml").write_text((TEMPLATES / "dagster-postgres.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # raises on a schema error
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert TRAINING_LIMIT in config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert "postgres" in config["storage"]


def test_dagster_production_queue_loads_with_the_training_limit(tmp_path) -> None:
    """A real instance from the template (storage swapped to SQLite in a temp DAGSTER_HOME, so
    no PostgreSQL is needed): its coordinator queues, and its run queue holds the tag limit."""
    config = yaml.safe_load((TEMPLATES / "dagster-postgres.yaml").read_text())
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert TRAINING_LIMIT in queue.tag_concurrency_limits


def test_dagster_jobs_that_train_carry_the_training_tag() -> None:
    # The job objects, not orchestration.definitions: importing the definitions binds their
    # resources to this moment's settings, before the integration tests set their own.
    for job in (jobs.platform_job, jobs.retrain_job):
        assert job.tags.items() >= TRAINING_TAGS.items(), job.name
    for job in (jobs.ingestion_job, jobs.import_job):
        assert "recsys/job" not in (job.tags or {}), job.name
    assert TRAINING_TAGS == {TRAINING_LIMIT["key"]: TRAINING_LIMIT["value"]}


def test_dagster_k8s_alternative_passes_the_launchers_schema(monkeypatch, tmp_path) -> None:
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    path = ROOT / "deploy" / "dagster" / "dagster-k8s.yaml"
    monkeypatch.setenv("RECSYS_DAGSTER_POSTGRES_URL", "postgresql+psycopg2://u@db/dagster")
    (tmp_path / "dagster.yaml").write_text(path.read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    assert TRAINING_LIMIT in config["concurrency"]["runs"]["tag_concurrency_limits"]


def test_dagster_container_workspace_points_at_the_code_location_service() -> None:
    workspace = yaml.safe_load((ROOT / "deploy" / "dagster" / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["grpc_server"] == {"host": "dagster-code", "port": 4000,
                                    "location_name": "recsys"}
    code = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "dagster.yaml").read_text())
    services = {d["metadata"]["name"]: d for d in code if d and d["kind"] == "Service"}
    assert services["dagster-code"]["spec"]["ports"][0]["port"] == 4000

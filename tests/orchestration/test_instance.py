"""DAGSTER_HOME gets the checked-in dagster.yaml of its profile, once."""

import dagster as dg
import yaml

from orchestration.instance import POSTGRES_URL, dagster_home


def test_local_profile_gets_the_sqlite_instance(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv(POSTGRES_URL, raising=False)
    config = yaml.safe_load((dagster_home() / "dagster.yaml").read_text())
    assert "storage" not in config
    assert config["run_coordinator"]["class"] == "DefaultRunCoordinator"
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"


def test_production_profile_reads_postgres_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv(POSTGRES_URL, "postgresql://nobody@127.0.0.1/none")
    config = yaml.safe_load((dagster_home() / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_url"] == {"env": POSTGRES_URL}


def test_an_existing_dagster_yaml_is_left_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    dagster_home()
    assert (tmp_path / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"

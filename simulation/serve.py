"""The service a simulation talks to: a running one, or ``bentoml serve`` started here with
fast refreshes (experiments every second, MLflow aliases every two), and a challenger model
version to test against the champion."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import mlflow
from mlflow import MlflowClient

from recsys.models.registry import CHAMPION, alias_version, load_recommender, log_recommender

BIN = Path(sys.executable).parent
CANDIDATE = "candidate"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def started_service(url: str | None, key: str | None) -> Iterator[tuple[str, str]]:
    """Yield (url, admin key): the given ones, or a service started for the run."""
    if key is None:
        key = subprocess.run([str(BIN / "python"), "-m", "serving.keys", "create", "--role",
                              "admin", "--name", "simulation", "--quiet"], check=True,
                             capture_output=True, text=True).stdout.strip()
    if url is not None:
        yield url, key
        return
    port = _free_port()
    env = {**os.environ, "RECSYS_SERVING_EXPERIMENT_REFRESH_SECONDS": "1",
           "RECSYS_SERVING_MODEL_POLL_SECONDS": "2"}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([str(BIN / "bentoml"), "serve",
                                 "serving.service:RecommendationService", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while not _ready(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the service did not start:\n{log.read()[-3000:]}")
                time.sleep(1)
            yield url, key
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=2).is_success
    except httpx.HTTPError:
        return False


def challenger_version(client: MlflowClient, model_name: str) -> str:
    """Register the champion's model again as a new version with alias ``candidate`` (a
    model to test: the same ranking, a new version for the promotion to move to)."""
    champion = alias_version(client, model_name, CHAMPION)
    if champion is None:
        raise RuntimeError(f"{model_name} has no champion: run the pipeline first")
    recommender = load_recommender(f"models:/{model_name}/{champion.version}")
    experiment = client.get_run(champion.run_id).info.experiment_id
    with mlflow.start_run(experiment_id=experiment, run_name="simulation-candidate") as run:
        pass
    version = log_recommender(recommender, model_name, run.info.run_id).version
    client.set_registered_model_alias(model_name, CANDIDATE, str(version))
    return CANDIDATE

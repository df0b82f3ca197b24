"""Shared fixtures: a real Redis for the session, and isolated platform directories."""

import gc
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from recsys.platform.redis_cluster import LocalCluster
from recsys.platform.redis_server import resolve_redis, stop_embedded
from recsys.platform.settings import Settings, get_settings

JWT_SECRET = "test-secret-" + "x" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(
    command: list[str], ready_url: str, timeout: float = 180, **popen: object
) -> Iterator[subprocess.Popen]:
    """Start ``command``, yield once ``ready_url`` answers 2xx, terminate it on exit."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(ready_url, timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{command[0]} did not answer {ready_url} (exit code {proc.poll()})")
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``REDIS_URL`` when set; otherwise an embedded Valkey started for this session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    settings = Settings(data_dir=tmp_path_factory.mktemp("valkey"), embedded_redis_port=free_port())
    target = resolve_redis(settings)
    yield target.url
    stop_embedded(settings)


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A local Valkey cluster, 3 primaries and a replica each, from the embedded binary; a
    replica takes over a killed primary in about two seconds (1 s node timeout)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), node_timeout_ms=1000).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def platform_dirs(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Path]:
    """Point every component at fresh directories and the session's Redis.

    Sets the environment the way a user would (data dir, Feast repo dir, Redis, Dagster and
    BentoML homes) for the whole session, and restores it afterwards.
    """
    root = tmp_path_factory.mktemp("platform")
    env = {
        "RECSYS_DATA_DIR": str(root / "data"),
        "RECSYS_FEATURE_REPO_DIR": str(root / "repo"),
        "REDIS_URL": redis_url,
        "DAGSTER_HOME": str(root / "data" / "dagster"),
        "BENTOML_HOME": str(root / "data" / "bentoml"),
        "PROMETHEUS_MULTIPROC_DIR": str(root / "prometheus"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'data' / 'mlflow' / 'mlflow.db'}",
        # End-user tokens (HS256) are accepted beside the API keys the tests create.
        "RECSYS_AUTH_JWT_SECRET": JWT_SECRET,
    }
    (root / "prometheus").mkdir()
    (root / "data" / "mlflow").mkdir(parents=True)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    clear_setting_caches()
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    clear_setting_caches()


def clear_setting_caches() -> None:
    """Forget settings read from the environment (they are cached per process)."""
    from serving.access import get_access
    from serving.config import get_auth_settings

    for cached in (get_settings, get_auth_settings, get_access):
        cached.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def unfreeze_heap() -> Iterator[None]:
    """Hand objects frozen by the service (``serving.gc_pauses.freeze_heap``) back to the
    collector before exit, so extension modules do not report them as leaked."""
    yield
    gc.unfreeze()

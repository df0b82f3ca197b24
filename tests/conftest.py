"""Shared fixtures: a real Redis for the session, and isolated platform directories."""

import gc
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from training.redis_server import resolve_redis, stop_embedded
from training.settings import Settings, get_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    }
    (root / "prometheus").mkdir()
    (root / "data" / "mlflow").mkdir(parents=True)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def unfreeze_heap() -> Iterator[None]:
    """Hand objects frozen by the service (``serving.gc_pauses.freeze_heap``) back to the
    collector before exit, so extension modules do not report them as leaked."""
    yield
    gc.unfreeze()

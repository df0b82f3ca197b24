"""One real run of the whole platform on a small synthetic world, shared by the tests here."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
import redis
from starlette.testclient import TestClient

from orchestration.run import main as run_platform
from recsys.events.event_log import EventLog
from recsys.platform.redis_cluster import LocalCluster
from recsys.platform.redis_server import connect
from recsys.platform.settings import Settings, get_settings
from serving.auth import KeyStore, Role
from tests.conftest import free_port

#: Rows that must be quarantined, each for a different reason.
BAD_ROWS = pd.DataFrame({
    "event_id": ["bad-type", "bad-rating", "bad-user"],
    "user_id": ["u1", "u1", " "],
    "item_id": ["i1", "i2", "i3"],
    "event_type": ["like", "rate", "view"],
    "value": [None, 9.0, None],
    "timestamp": pd.to_datetime(["2026-11-20T10:00:00Z"] * 3, utc=True),
    "context": ["{}"] * 3,
})


@dataclass(frozen=True)
class Platform:
    settings: Settings
    root: Path
    admin_key: str

    @property
    def headers(self) -> dict[str, str]:
        """Credentials of an admin service key, as a client sends them."""
        return {"Authorization": f"Bearer {self.admin_key}"}


@pytest.fixture(scope="session")
def platform(platform_dirs: Path) -> Platform:
    """The platform after ``python -m orchestration.run`` on a 300-user world plus bad rows."""
    settings = get_settings()
    # The world ends at today's midnight; put the malformed rows inside its window.
    EventLog(settings.event_log_dir).append(
        BAD_ROWS.assign(timestamp=pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=3)),
        segment="bad-rows",
    )
    code = run_platform(["--source", "synthetic", "--users", "300", "--items", "200",
                         "--days", "30", "--seed", "7"])
    assert code == 0, "the platform job failed"
    _, admin_key = KeyStore(settings.data_dir / "auth" / "keys.json").create(Role.ADMIN, "tests")
    return Platform(settings=settings, root=platform_dirs, admin_key=admin_key)


@pytest.fixture(scope="session")
def service_client(platform: Platform) -> Iterator[TestClient]:
    """The service in process (BentoML's ASGI app), with an admin key: one per session, as
    BentoML registers its traffic metrics once per process."""
    from serving.service import RecommendationService

    with TestClient(RecommendationService.to_asgi(), headers=platform.headers) as client:
        yield client


@pytest.fixture(scope="session")
def cluster_store(platform: Platform, valkey_cluster: LocalCluster) -> LocalCluster:
    """The local Valkey cluster holding the platform's online features (Feast's rows copied
    from the session's Redis: the key layout is the same on a cluster)."""
    source, target = redis.Redis.from_url(platform.settings.redis_url), connect(valkey_cluster.url)
    with target.pipeline(transaction=False) as pipe:
        for key in source.scan_iter(count=1000):
            if source.type(key) == b"hash" and not key.startswith(b"recsys:"):
                pipe.hset(key, mapping=source.hgetall(key))
        pipe.execute()
    return valkey_cluster


@dataclass
class ClusterReplicas:
    """Service replicas on the cluster in the stream profile, and the stream's consumer."""

    urls: list[str]
    processes: list[subprocess.Popen]
    service_dirs: list[Path]  # each replica's data directory (its outbox)
    log_dir: Path  # the consumer's data directory: the event log it writes
    stream_key: str  # the shared event stream's key on the cluster


@pytest.fixture(scope="session")
def cluster_replicas(platform: Platform, cluster_store: LocalCluster,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterReplicas]:
    """Two ``bentoml serve`` replicas with ``REDIS_URL=redis+cluster://...``, each as on a
    host of its own, sharing one event stream on the cluster, and one stream consumer on a
    host of its own. The cluster tests use the first; the balancer tests put both behind
    HAProxy (and kill the second last)."""
    stream_key = f"test:events:{uuid.uuid4().hex}"
    consumer_root = tmp_path_factory.mktemp("stream-consumer")
    consumer = start_consumer(
        cluster_service_env(platform, cluster_store, consumer_root, stream_key), consumer_root)
    roots = [tmp_path_factory.mktemp(f"replica-{i}") for i in (1, 2)]
    envs = []
    for root in roots:
        (root / "prometheus").mkdir()
        # one end user is requested thousands of times a second under wrk
        envs.append({**cluster_service_env(platform, cluster_store, root, stream_key),
                     "RECSYS_AUTH_USER_RATE_LIMIT": "10000000/minute"})
    started = start_services(envs, roots)
    try:
        # a long-running consumer is warm: one event through each replica before the tests
        now = pd.Timestamp.now(tz="UTC").isoformat()
        warm_ups = {f"warm-up-{uuid.uuid4().hex}": url for _, url in started}
        for event_id, url in warm_ups.items():
            event = {"event_id": event_id, "user_id": "warm-up-user", "item_id": "warm-up-item",
                     "event_type": "view", "timestamp": now}
            assert httpx.post(f"{url}/events", json=event, headers=platform.headers,
                              timeout=10).status_code == 202
        wait_logged(set(warm_ups), consumer_root / "data", timeout=120)
        yield ClusterReplicas([u for _, u in started], [p for p, _ in started],
                              [root / "data" for root in roots], consumer_root / "data",
                              stream_key)
    finally:
        processes = [consumer, *(p for p, _ in started)]
        for proc in processes:
            proc.terminate()
        for proc in processes:
            proc.wait(timeout=30)


def cluster_service_env(platform: Platform, cluster: LocalCluster, root: Path,
                        stream_key: str) -> dict[str, str]:
    """Environment of a process on the cluster in the stream profile, as on a host of its
    own: its own data directory (event log, outbox) and ``BENTOML_HOME``; the model
    registry, Feast registry and key store are the platform's (shared services in
    production); the event stream is ``stream_key`` on the cluster."""
    return {
        "REDIS_URL": cluster.url,
        "RECSYS_EVENT_STREAM": "redis",
        "RECSYS_EVENT_STREAM_KEY": stream_key,
        "RECSYS_DATA_DIR": str(root / "data"),
        "BENTOML_HOME": str(root / "bentoml"),
        "PROMETHEUS_MULTIPROC_DIR": str(root / "prometheus"),
        "RECSYS_AUTH_KEYS_FILE": str(platform.settings.data_dir / "auth" / "keys.json"),
        "RECSYS_SERVING_REDIS_RETRY_SECONDS": "0.2",
        "RECSYS_SERVING_MODEL_POLL_SECONDS": "0",
    }


def start_consumer(env: dict[str, str], root: Path) -> subprocess.Popen:
    """A stream consumer (``python -m recsys.features.stream_consumer``) with ``env``; it
    logs to ``consumer.log`` under ``root``."""
    (root / "prometheus").mkdir(parents=True, exist_ok=True)
    with open(root / "consumer.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "recsys.features.stream_consumer", "--name", root.name,
             "--block-ms", "100"], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **env}, cwd=Path(__file__).parents[2])


def logged_ids(data_dir: Path) -> set[str]:
    """Event ids in today's event log under ``data_dir``."""
    log = EventLog(data_dir / "events" / "log")
    return set(log.read_day(pd.Timestamp.now(tz="UTC").date())["event_id"])


def wait_logged(event_ids: set[str], data_dir: Path, timeout: float = 60) -> None:
    """Wait until every one of ``event_ids`` is in the event log under ``data_dir``."""
    deadline = time.monotonic() + timeout
    while missing := event_ids - logged_ids(data_dir):
        assert time.monotonic() < deadline, f"{len(missing)} accepted events never logged"
        time.sleep(0.2)


def first_answer_without(http: httpx.Client, user: str, item: str,
                         timeout: float = 10) -> tuple[dict, int]:
    """Ask ``http`` for ``user``'s list until ``item`` is not in it (an event of the user on
    it reached the answers); returns that answer and the number of answers asked for."""
    deadline = time.monotonic() + timeout
    for asked in range(1, 10**6):
        answer = http.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
        if item not in [i["item_id"] for i in answer["items"]]:
            return answer, asked
        assert time.monotonic() < deadline, f"{item} still recommended after {timeout} s"
        time.sleep(0.002)
    raise AssertionError("unreachable")


def start_services(envs: list[dict[str, str]], roots: list[Path],
                   timeout: float = 300) -> list[tuple[subprocess.Popen, str]]:
    """``bentoml serve`` per environment, started side by side; each once ready. Each
    process logs to ``server.log`` under its root."""
    bentoml = str(Path(sys.executable).parent / "bentoml")
    started = []
    for env, root in zip(envs, roots, strict=True):
        port = free_port()
        with open(root / "server.log", "w") as log:
            proc = subprocess.Popen(
                [bentoml, "serve", "serving.service:RecommendationService", "--port", str(port)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        started.append((proc, f"http://127.0.0.1:{port}"))
    deadline = time.monotonic() + timeout
    for proc, url in started:
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                for other, _ in started:
                    other.kill()
                pytest.fail(f"a service did not become ready (logs: server.log in {roots})")
            time.sleep(0.5)
    return started

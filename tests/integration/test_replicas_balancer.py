"""Two service replicas behind HAProxy (``deploy/haproxy/haproxy.cfg``) on the Valkey cluster.

Each replica runs as on a host of its own (its own port, data directory and
``BENTOML_HOME``); they share the cluster (online features, cache, rate limits), the event
stream on it (one consumer, on a host of its own, writes the log and pushes online) and the
platform's registries. Skipped, with the reason, without HAProxy or wrk.
"""

import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

from recsys.platform.settings import PROJECT_ROOT
from tests.conftest import free_port
from tests.integration.conftest import (
    ClusterReplicas,
    Platform,
    first_answer_without,
    wait_logged,
)
from tests.integration.test_service import active_user

pytestmark = pytest.mark.integration

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
WRK = shutil.which("wrk")
CONFIG = PROJECT_ROOT / "deploy" / "haproxy" / "haproxy.cfg"


@dataclass
class Replicas:
    balancer: str
    urls: list[str]
    processes: list[subprocess.Popen]
    log_dir: Path  # the consumer's data directory: the event log it writes


@pytest.fixture(scope="module")
def replicas(cluster_replicas: ClusterReplicas) -> Iterator[Replicas]:
    """HAProxy with ``deploy/haproxy/haproxy.cfg`` in front of the cluster's two replicas."""
    if not Path(HAPROXY).exists():
        pytest.skip("HAProxy is not installed (Debian: apt install haproxy)")
    port = free_port()
    ports = [url.rsplit(":", 1)[1] for url in cluster_replicas.urls]
    balancer = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(CONFIG)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"LB_BIND": f"127.0.0.1:{port}", "REPLICA_1": f"127.0.0.1:{ports[0]}",
             "REPLICA_2": f"127.0.0.1:{ports[1]}"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while len(served_by(url, 6)) < 2:  # both replicas passed their health checks
            assert balancer.poll() is None, "haproxy exited"
            assert time.monotonic() < deadline, "the balancer never used both replicas"
            time.sleep(0.2)
        yield Replicas(url, cluster_replicas.urls, cluster_replicas.processes,
                       cluster_replicas.log_dir)
    finally:
        balancer.terminate()
        balancer.wait(timeout=30)


def served_by(url: str, requests: int) -> set[str]:
    """The replicas (``X-Replica``) that answered ``requests`` readiness probes."""
    names = set()
    for _ in range(requests):
        try:
            response = httpx.get(f"{url}/health/ready", timeout=2)
        except httpx.HTTPError:
            continue
        if response.status_code == 200:
            names.add(response.headers["x-replica"])
    return names


def test_replica_event_through_one_replica_is_reflected_by_the_other_behind_the_balancer(
    replicas: Replicas, platform: Platform
) -> None:
    user = active_user(platform, rank=5)
    a, b = (httpx.Client(base_url=u, headers=platform.headers, timeout=10)
            for u in replicas.urls)
    with a, b:
        before = b.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
        deadline = time.monotonic() + 5  # B's answer cached: the event must reach it anyway
        while not b.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()["cached"]:
            assert time.monotonic() < deadline, "B's answer was never cached"
            time.sleep(0.01)
        top = before["items"][0]["item_id"]
        now = pd.Timestamp.now(tz="UTC")
        posted = {"event_id": f"replica-{uuid.uuid4().hex}", "user_id": user, "item_id": top,
                  "event_type": "view", "timestamp": now.isoformat()}
        start = time.perf_counter()
        assert a.post("/events", json={"events": [posted]}).status_code == 202
        accepted = time.perf_counter()
        after, asked = first_answer_without(b, user, top)
        answered = time.perf_counter()
    print(f"\ncross-replica freshness: POST through A answered 202 in "
          f"{(accepted - start) * 1000:.1f} ms; B's answer {asked} excluded the item, "
          f"{(answered - accepted) * 1000:.1f} ms after the 202 (stream -> consumer -> "
          "online push and cache generation on the cluster)")
    assert after["cached"] is False and after["fallback"] is False
    wait_logged({posted["event_id"]}, replicas.log_dir)
    # through the balancer, consecutive requests alternate replicas and see the same state
    with httpx.Client(base_url=replicas.balancer, headers=platform.headers, timeout=10) as lb:
        answers = [lb.get(f"/api/v1/recs/{user}", params={"limit": 5}) for _ in range(4)]
    assert {r.headers["x-replica"] for r in answers} == {"replica1", "replica2"}
    assert all(top not in [i["item_id"] for i in r.json()["items"]] for r in answers)


def test_replica_killed_under_wrk_load_behind_the_balancer_fails_at_most_in_flight_requests(
    replicas: Replicas, platform: Platform
) -> None:
    if WRK is None:
        pytest.skip("wrk is not installed (Debian: apt install wrk)")
    connections = 16
    path = f"{replicas.balancer}/api/v1/recs/{active_user(platform, rank=6)}?limit=5"
    load = subprocess.Popen(
        [WRK, "-t2", f"-c{connections}", "-d6s", "--latency",
         "-H", f"Authorization: Bearer {platform.admin_key}", path],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2.0)
    # SIGKILL the second replica mid-load, as when its host dies: BentoML's parent and its
    # workers (each in a session of its own; they share the listening socket)
    server = psutil.Process(replicas.processes[1].pid)
    for process in [server, *server.children(recursive=True)]:
        process.send_signal(signal.SIGKILL)
    output, _ = load.communicate(timeout=60)
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    socket_errors = sum(int(g) for g in socket.groups()) if socket else 0
    print(f"\nreplica killed under wrk load ({connections} connections): {total} requests, "
          f"{non_2xx} non-2xx, {socket_errors} socket errors\n{output}")
    assert total > 100
    assert non_2xx + socket_errors <= connections  # at most one in flight per connection
    assert served_by(replicas.balancer, 4) == {"replica1"}  # the dead one is out of rotation

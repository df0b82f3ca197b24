"""The service on a 3-primary Valkey cluster, over HTTP, with the shared event stream on the
cluster and its consumer; a primary killed under traffic."""

import threading
import time
import uuid

import httpx
import pandas as pd
import pytest
from redis.crc import key_slot

from recsys.features.names import RECENT_ITEMS, feature_ref
from recsys.features.online_reader import EntityFeatureReader
from recsys.features.store import get_feature_store
from recsys.platform.redis_cluster import LocalCluster, colocated_key
from recsys.platform.redis_server import connect
from tests.integration.conftest import (
    ClusterReplicas,
    Platform,
    first_answer_without,
    wait_logged,
)
from tests.integration.test_service import active_user

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_service(cluster_replicas: ClusterReplicas) -> ClusterReplicas:
    """The first of the cluster's replicas serves these tests."""
    return cluster_replicas


def row_keys(users: list[str]) -> dict[str, bytes]:
    """Feast's Redis key of each user's online row."""
    reader = EntityFeatureReader(get_feature_store(), [feature_ref(RECENT_ITEMS)], "user_id")
    return {user: reader.row_key(user) for user in users}


def event(user: str, item: str, tag: str) -> dict[str, str]:
    now = pd.Timestamp.now(tz="UTC")
    return {"event_id": f"{tag}-{uuid.uuid4().hex}", "user_id": user, "item_id": item,
            "event_type": "view", "timestamp": now.isoformat()}


def test_cluster_serves_cached_recommendations_in_the_users_slot_and_fresh_events(
    cluster_service: ClusterReplicas, platform: Platform, cluster_store: LocalCluster
) -> None:
    base = cluster_service.urls[0]
    user = active_user(platform, rank=4)
    with httpx.Client(base_url=base, headers=platform.headers, timeout=10) as http:
        first = http.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
        assert first["fallback"] is False and len(first["items"]) == 5
        deadline = time.monotonic() + 5  # the cache writes behind the response
        while not (again := http.get(f"/api/v1/recs/{user}", params={"limit": 5}).json())["cached"]:
            assert time.monotonic() < deadline, "the response was never cached"
            time.sleep(0.01)
        assert again["items"] == first["items"]
        # the cached hash sits in the slot of the user's Feast row (one-script lookup)
        row = row_keys([user])[user]
        cache_key = colocated_key(b"recsys:recs:", row, user.encode())
        client = connect(cluster_store.url)
        assert client.exists(row) and client.exists(cache_key)
        assert key_slot(cache_key) == key_slot(row)
        top = first["items"][0]["item_id"]
        posted = event(user, top, "cluster")
        assert http.post("/events", json={"events": [posted]}).status_code == 202
        accepted = time.perf_counter()
        after, asked = first_answer_without(http, user, top)
        lag = (time.perf_counter() - accepted) * 1000
    print(f"\nevent to an answer without its item: {lag:.1f} ms after the 202, answer "
          f"{asked} (through the stream and its consumer on the cluster)")
    assert after["cached"] is False and after["fallback"] is False
    wait_logged({posted["event_id"]}, cluster_service.log_dir)


def test_cluster_primary_killed_under_traffic_costs_fallbacks_only_in_the_failover_window(
    cluster_service: ClusterReplicas, platform: Platform, cluster_store: LocalCluster
) -> None:
    base = cluster_service.urls[0]
    # the worst case: the primary that holds the event stream and some users' rows
    victim = cluster_store.primary_of(cluster_service.stream_key)
    candidates = [active_user(platform, rank=r) for r in range(48)]
    keys = row_keys(candidates)
    on_victim = [u for u in candidates if cluster_store.primary_of(keys[u]) == victim]
    users = on_victim[:8] + [u for u in candidates if u not in on_victim][:16]
    assert on_victim, "no user's row on the stream's primary"
    items = [item["item_id"] for item in httpx.get(
        f"{base}/api/v1/recs/{users[0]}", params={"limit": 20, "type": "popular"},
        headers=platform.headers, timeout=10).json()["items"]]
    answers: list[tuple[float, int, bool | None]] = []
    posts: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=base, headers=platform.headers, timeout=10) as http:
            for i in range(10**9):
                if stop.is_set():
                    return
                response = http.get(f"/api/v1/recs/{users[i % len(users)]}", params={"limit": 5})
                fallback = response.json()["fallback"] if response.status_code == 200 else None
                answers.append((time.monotonic(), response.status_code, fallback))

    def write() -> None:
        with httpx.Client(base_url=base, headers=platform.headers, timeout=10) as http:
            for i in range(10**9):
                if stop.is_set():
                    return
                posted = event(on_victim[i % len(on_victim)], items[i % len(items)], "failover")
                response = http.post("/events", json=posted)
                posts.append((time.monotonic(), response.status_code, posted["event_id"]))
                time.sleep(0.02)

    threads = [threading.Thread(target=read), threading.Thread(target=read),
               threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    try:  # the victim comes back as a replica for the tests that follow, whatever fails
        try:
            time.sleep(1.0)
            cluster_store.kill(victim)
            killed = time.monotonic()
            while True:  # until a replica serves the victim's slots
                try:
                    if cluster_store.primary_of(keys[users[0]]) != victim:
                        break
                except LookupError:
                    pass
                assert time.monotonic() - killed < 30, "no replica took over"
                time.sleep(0.02)
            promoted = time.monotonic()
            time.sleep(3.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        statuses = {status for _, status, _ in answers} | {status for _, status, _ in posts}
        fallbacks = [at for at, _, fallback in answers if fallback]
        settled = [fallback for at, _, fallback in answers if at > promoted + 1.0]
        print(f"\nfailover window {promoted - killed:.2f} s; {len(answers)} answers, "
              f"{len(fallbacks)} fallbacks (within {max(fallbacks, default=killed) - killed:.2f} s "
              f"of the kill); {len(posts)} events posted; statuses {sorted(statuses)}")
        assert statuses <= {200, 202}, "a request failed during the failover"
        assert all(killed <= at <= promoted + 1.0 for at in fallbacks)
        assert settled and not any(settled)
        # every accepted event reaches the log through the stream (an append that failed during
        # the failover waits in the service's outbox and is appended once the slot is served)
        accepted = {event_id for _, status, event_id in posts if status == 202}
        assert accepted
        wait_logged(accepted, cluster_service.log_dir)
        assert not any((cluster_service.service_dirs[0] / "events" / "outbox").rglob("*.jsonl"))
    finally:
        if victim not in cluster_store.live_ports():
            cluster_store.restart(victim)
        deadline = time.monotonic() + 30
        while not cluster_store.healthy():
            assert time.monotonic() < deadline, "the killed primary did not rejoin"
            time.sleep(0.1)

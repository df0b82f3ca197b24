"""The BentoML service on the trained champion, in process and under ``bentoml serve``."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
from starlette.testclient import TestClient

from tests.conftest import free_port
from tests.integration.conftest import Platform
from training.event_log import EventLog

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(platform: Platform) -> Iterator[TestClient]:
    from serving.service import RecommendationService

    with TestClient(RecommendationService.to_asgi()) as test_client:
        yield test_client


def history(platform: Platform, user: str) -> set[str]:
    valid = pd.read_parquet(platform.settings.warehouse_dir / "validated_events")
    return set(valid.loc[valid["user_id"] == user, "item_id"])


def active_user(platform: Platform, rank: int = 0) -> str:
    valid = pd.read_parquet(platform.settings.warehouse_dir / "validated_events")
    return str(valid["user_id"].value_counts().index[rank])


def test_known_user_gets_personal_unseen_items(client: TestClient, platform: Platform) -> None:
    user = active_user(platform)
    body = client.get(f"/api/v1/recs/{user}", params={"limit": 7}).json()
    items = [item["item_id"] for item in body["items"]]
    assert len(items) == 7 and len(set(items)) == 7
    assert body["fallback"] is False
    assert not set(items) & history(platform, user)
    assert all(item["reason"] for item in body["items"])
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_recommend_api_matches_rest_route(client: TestClient, platform: Platform) -> None:
    user = active_user(platform, rank=1)
    rest = client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
    api = client.post("/recommend", json={"user_id": user, "num_items": 5}).json()
    assert [i["item_id"] for i in api["items"]] == [i["item_id"] for i in rest["items"]]
    assert api["model_version"] == rest["model_version"]


def test_unknown_user_gets_popular_items_flagged_as_fallback(client: TestClient) -> None:
    body = client.get("/api/v1/recs/never-seen-user", params={"limit": 4}).json()
    assert body["fallback"] is True
    assert body["fallback_reason"] == "unknown user"
    assert len(body["items"]) == 4


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": [{"event_id": "e", "user_id": "u1", "item_id": "i1", "event_type": "like",
                      "timestamp": "2026-11-20T10:00:00Z"}]}, "event_type"),
        ({"events": [{"event_id": "e", "user_id": "u1", "item_id": "i1", "event_type": "view",
                      "timestamp": "2026-11-20T10:00:00"}]}, "timestamp"),
        ({"events": [{"event_id": "e", "user_id": "u1", "event_type": "view",
                      "timestamp": "2026-11-20T10:00:00Z"}]}, "item_id"),
    ],
)
def test_malformed_event_gets_422_naming_the_field(
    client: TestClient, payload: dict, field: str
) -> None:
    response = client.post("/events", json=payload)
    assert response.status_code == 422
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}


def test_malformed_recommend_gets_422(client: TestClient) -> None:
    response = client.post("/recommend", json={"num_items": 3})
    assert response.status_code == 422
    assert "user_id" in response.text


def test_posted_event_is_logged_and_excluded_from_the_next_response(
    client: TestClient, platform: Platform
) -> None:
    user = active_user(platform, rank=2)
    top = client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()["items"][0]["item_id"]
    now = pd.Timestamp.now(tz="UTC")
    event = {"event_id": f"it-{now.value}", "user_id": user, "item_id": top,
             "event_type": "view", "timestamp": now.isoformat()}
    response = client.post("/events", json={"events": [event]})
    assert response.status_code == 202, response.text
    after = client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
    assert top not in [item["item_id"] for item in after["items"]]
    logged = EventLog(platform.settings.event_log_dir).read_day(now.date())
    assert event["event_id"] in set(logged["event_id"])


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"model": True, "redis": True}


def test_bentoml_serve_answers_over_http(platform: Platform) -> None:
    """The real server process: ``bentoml serve`` on the champion, queried over HTTP."""
    port = free_port()
    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    proc = subprocess.Popen(
        [bentoml, "serve", "serving.service:RecommendationService", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("bentoml serve did not become ready")
        user = active_user(platform)
        body = httpx.get(f"http://127.0.0.1:{port}/api/v1/recs/{user}?limit=3", timeout=10).json()
        assert len(body["items"]) == 3 and body["fallback"] is False
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)

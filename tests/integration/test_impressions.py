"""Impressions through the real service: every response has a rec_id, the served list is
logged, and outcomes posted back are attributed to it."""

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from starlette.testclient import TestClient

from recsys.events.event_log import EventLog
from recsys.events.impressions import ImpressionLog, attribute
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration


def logged(platform: Platform, rec_ids: set[str], timeout: float = 20) -> pd.DataFrame:
    """The impression rows of ``rec_ids`` once the background flush has written them all."""
    log = ImpressionLog(platform.settings.impression_log_dir)
    deadline = time.monotonic() + timeout
    while True:
        frame = log.read()
        frame = frame[frame["rec_id"].isin(rec_ids)]
        if set(frame["rec_id"]) == rec_ids or time.monotonic() > deadline:
            return frame
        time.sleep(0.2)


def test_each_response_is_an_impression_logged_with_its_list(
        service_client: TestClient, platform: Platform) -> None:
    user = "u3"
    first = service_client.get(f"/api/v1/recs/{user}", params={"limit": 4}).json()
    again = service_client.get(f"/api/v1/recs/{user}", params={"limit": 4}).json()
    deadline = time.monotonic() + 10
    while not again["cached"] and time.monotonic() < deadline:  # the cache is written behind
        time.sleep(0.05)
        again = service_client.get(f"/api/v1/recs/{user}", params={"limit": 4}).json()
    posted = service_client.post("/recommend", json={"user_id": "nobody-yet", "num_items": 3})
    bodies = [first, again, posted.json()]
    rec_ids = {body["rec_id"] for body in bodies}
    assert len(rec_ids) == 3 and all(len(r) == 32 for r in rec_ids)  # a cached answer too
    assert again["cached"] is True
    frame = logged(platform, rec_ids)
    for body in bodies:
        rows = frame[frame["rec_id"] == body["rec_id"]].sort_values("position")
        assert rows["item_id"].tolist() == [i["item_id"] for i in body["items"]]
        assert rows["score"].tolist() == pytest.approx([i["score"] for i in body["items"]])
        assert set(rows["user_id"]) == {body["user_id"]}
        assert set(rows["model_version"]) == {body["model_version"]}
        assert set(rows["fallback"]) == {body["fallback"]}
    assert (frame["latency_ms"] > 0).all()


def test_outcomes_posted_with_or_without_rec_id_are_attributed(
        service_client: TestClient, platform: Platform) -> None:
    user = "u5"
    body = service_client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
    shown = [item["item_id"] for item in body["items"]]
    now = datetime.now(UTC)  # after the impression (an outcome never precedes its list)
    events = [
        {"event_id": f"attr-{body['rec_id']}-1", "user_id": user, "item_id": shown[2],
         "event_type": "click", "timestamp": now.isoformat(), "rec_id": body["rec_id"],
         "position": 2},
        {"event_id": f"attr-{body['rec_id']}-2", "user_id": user, "item_id": shown[0],
         "event_type": "purchase", "value": 9.5, "timestamp": now.isoformat()},
    ]
    assert service_client.post("/events", json={"events": events}).status_code == 202
    bad = dict(events[0], event_id="attr-bad", position=-3)
    refused = service_client.post("/events", json=bad)
    assert refused.status_code == 422 and "position" in refused.text
    impressions = logged(platform, {body["rec_id"]})
    day = EventLog(platform.settings.event_log_dir).read_day(now.date())
    mine = day[day["event_id"].isin([e["event_id"] for e in events])]
    assert mine["rec_id"].tolist() == [body["rec_id"], None]
    out = attribute(mine, impressions, timedelta(hours=1)).set_index("event_id")
    assert out["rec_id"].tolist() == [body["rec_id"]] * 2
    assert out["position"].tolist() == [2, 0]

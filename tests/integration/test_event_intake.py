"""No accepted event lost, counted twice or frozen: the event path through the real service,
Redis and Feast."""

import threading
import time
import uuid

import pandas as pd
import pytest
from starlette.testclient import TestClient

from recsys.events.event_log import EventLog
from recsys.features.names import RECENT_COUNT, RECENT_ITEMS, feature_ref
from recsys.features.reads import online_entity_features
from recsys.features.store import get_feature_store
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(service_client: TestClient) -> TestClient:
    return service_client


def recent(platform: Platform, user: str) -> tuple[list[str], int]:
    store = get_feature_store(platform.settings)
    found = online_entity_features(store, [feature_ref(RECENT_ITEMS), feature_ref(RECENT_COUNT)],
                                   "user_id", [user])
    return list(found[RECENT_ITEMS][0] or []), int(found[RECENT_COUNT][0] or 0)


def event(user: str, item: str, when: pd.Timestamp | None = None, event_id: str | None = None,
          ) -> dict:
    when = when if when is not None else pd.Timestamp.now(tz="UTC")
    return {"event_id": event_id or f"t-{uuid.uuid4().hex}", "user_id": user, "item_id": item,
            "event_type": "view", "timestamp": when.isoformat()}


def test_an_event_from_the_future_is_refused_and_does_not_freeze_the_user(
    service: TestClient, platform: Platform
) -> None:
    user = f"future-{uuid.uuid4().hex[:8]}"
    ahead = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=2)
    refused = service.post("/events", json=event(user, "i1", ahead))
    assert refused.status_code == 422
    assert "ahead of the server's clock" in str(refused.json())
    assert service.post("/events", json=event(user, "i2")).status_code == 202
    assert service.post("/events", json=event(user, "i3")).status_code == 202
    items, count = recent(platform, user)
    assert items[:2] == ["i3", "i2"] and count == 2


def test_a_retried_event_counts_once_online_even_on_another_day(
    service: TestClient, platform: Platform
) -> None:
    user = f"retry-{uuid.uuid4().hex[:8]}"
    first = event(user, "i5", event_id=f"retry-{user}")
    assert service.post("/events", json=first).status_code == 202
    later = {**first, "timestamp": (pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1))
             .isoformat()}
    assert service.post("/events", json={"events": [later, later]}).status_code == 202
    assert recent(platform, user) == (["i5"], 1)
    logged = pd.concat([EventLog(platform.settings.event_log_dir).read_day(day)
                        for day in EventLog(platform.settings.event_log_dir).days()[-2:]])
    assert (logged["event_id"] == first["event_id"]).sum() >= 1  # durable, deduplicated later


def test_concurrent_posts_for_one_user_lose_no_update(service: TestClient,
                                                      platform: Platform) -> None:
    user = f"busy-{uuid.uuid4().hex[:8]}"
    posted = [f"c{i}" for i in range(50)]
    codes: list[int] = []

    def post(item: str) -> None:
        codes.append(service.post("/events", json=event(user, item)).status_code)

    threads = [threading.Thread(target=post, args=(item,)) for item in posted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [202] * 50
    # A post that waited too long for the user's lock is queued and replayed (every 2 s):
    # all 50 arrive, none overwrites another.
    deadline = time.monotonic() + 20
    while (found := recent(platform, user))[1] < 50 and time.monotonic() < deadline:
        time.sleep(0.5)
    items, count = found
    assert count == 50  # every read-modify-write saw the one before it
    assert len(items) == 20 and len(set(items)) == 20 and set(items) <= set(posted)


def test_events_accepted_while_redis_is_unreachable_are_replayed_once(
    platform: Platform, tmp_path
) -> None:
    from recsys.events.schema import Event
    from recsys.platform.redis_server import resolve_redis
    from serving.breaker import Breaker
    from serving.cache import ResponseCache
    from serving.intake import EventIntake

    breaker = Breaker(retry_seconds=3600)
    cache = ResponseCache(resolve_redis(platform.settings).url, 300, Breaker())
    intake = EventIntake(EventLog(tmp_path / "log"), get_feature_store(platform.settings),
                         breaker, cache, tmp_path / "outbox", replay_seconds=0)
    user = f"outage-{uuid.uuid4().hex[:8]}"
    batch = [Event.model_validate(event(user, item)) for item in ("o1", "o2")]
    breaker.failed()  # as after a failed push: Redis counts as down
    assert intake.accept(batch) == 0
    assert recent(platform, user) == ([], 0)
    assert len(list((tmp_path / "outbox").glob("*.jsonl"))) == 1
    assert len(EventLog(tmp_path / "log").read_day(pd.Timestamp.now(tz="UTC").date())) == 2
    breaker.succeeded()  # Redis is back
    assert intake.replay() == 2 and intake.replay() == 0
    assert recent(platform, user) == (["o2", "o1"], 2)
    intake.accept(batch)  # the same events again: already pushed, not counted twice
    assert recent(platform, user) == (["o2", "o1"], 2)

"""The Redis event stream against a real Redis: append whole batches, read in a group,
acknowledge, resume and claim what a dead consumer left pending, dead-letter bad entries."""

import time
import uuid

import pandas as pd
import pytest
import redis

from recsys.events.impressions import impression_record
from recsys.events.schema import Event
from recsys.events.stream import IMPRESSION_FIELD, RedisEventStream, open_event_stream
from recsys.platform.settings import Settings


@pytest.fixture
def stream(redis_url: str) -> RedisEventStream:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    made = RedisEventStream(client, f"test:stream:{uuid.uuid4().hex}", "writers", maxlen=10_000)
    made.ensure_group()
    return made


def events(n: int, user: str = "u1") -> list[Event]:
    now = pd.Timestamp.now(tz="UTC")
    return [Event(event_id=f"e-{uuid.uuid4().hex}", user_id=user, item_id=f"i{i}",
                  event_type="view", timestamp=now) for i in range(n)]


def test_stream_delivers_each_entry_to_one_consumer_of_the_group(stream: RedisEventStream
                                                                 ) -> None:
    sent = events(10)
    assert len(stream.append(sent)) == 10
    first = stream.read("a", count=6, block_ms=10)
    second = stream.read("b", count=6, block_ms=10)
    assert [e.event for e in first + second] == sent  # in order, once
    assert stream.read("a", count=6, block_ms=10) == []
    assert stream.backlog() == {"length": 10, "pending": 10, "lag": 0}
    assert stream.ack([e.entry_id for e in first + second]) == 10
    assert stream.backlog()["pending"] == 0


def test_stream_resumes_own_pending_and_claims_a_dead_consumers_entries(
    stream: RedisEventStream,
) -> None:
    sent = events(4)
    stream.append(sent)
    taken = stream.read("dead", count=4, block_ms=10)  # then "dead" dies without acking
    assert [e.event for e in stream.pending("dead", 10)] == sent  # a restart resumes them
    assert stream.claim("alive", min_idle_ms=60_000, count=10) == []  # not idle long enough
    time.sleep(0.05)
    claimed = stream.claim("alive", min_idle_ms=20, count=10)
    assert [e.entry_id for e in claimed] == [e.entry_id for e in taken]
    assert stream.pending("dead", 10) == []
    stream.ack([e.entry_id for e in claimed])
    assert stream.backlog()["pending"] == 0


def test_stream_batch_is_appended_whole_and_bad_entries_go_to_dead_letter(
    stream: RedisEventStream,
) -> None:
    stream.client.xadd(stream.key, {b"event": b'{"event_id": "x"}'})  # not a valid event
    stream.append(events(2))
    read = stream.read("a", count=10, block_ms=10)
    bad = [e for e in read if e.event is None]
    assert len(bad) == 1 and "user_id" in (bad[0].error or "")
    stream.dead_letter(bad)
    dead = stream.client.xrange(stream.dead_key)
    assert len(dead) == 1 and dead[0][1][b"entry_id"] == bad[0].entry_id.encode()
    assert stream.backlog()["pending"] == 2  # the good ones wait for their consumer


def test_stream_setting_selects_the_engine(redis_url: str, tmp_path) -> None:  # noqa: ANN001
    assert open_event_stream(Settings(data_dir=tmp_path)) is None  # local: no stream
    made = open_event_stream(Settings(data_dir=tmp_path, event_stream="redis",
                                      event_stream_url=redis_url, event_stream_key="k1"))
    assert isinstance(made, RedisEventStream) and made.key == "k1"
    with pytest.raises(NotImplementedError, match="confluent-kafka"):
        open_event_stream(Settings(data_dir=tmp_path, event_stream="kafka"))


def test_stream_works_on_a_redis_cluster(valkey_cluster, tmp_path) -> None:  # noqa: ANN001
    made = open_event_stream(Settings(data_dir=tmp_path, event_stream="redis",
                                      event_stream_url=valkey_cluster.url,
                                      event_stream_key=f"test:stream:{uuid.uuid4().hex}"))
    assert isinstance(made, RedisEventStream)
    made.ensure_group()
    sent = events(5)
    made.append(sent)  # one MULTI on the key's primary
    taken = made.read("a", count=10, block_ms=10)
    assert [e.event for e in taken] == sent
    time.sleep(0.05)
    assert [e.event for e in made.claim("b", min_idle_ms=20, count=10)] == sent
    assert made.ack([e.entry_id for e in taken]) == 5
    assert made.backlog() == {"length": 5, "pending": 0, "lag": 0}


def test_stream_forgets_gone_consumers_with_nothing_pending(stream: RedisEventStream) -> None:
    stream.append(events(2))
    done, holding = stream.read("done", 1, 10), stream.read("holding", 1, 10)
    stream.ack([e.entry_id for e in done])
    time.sleep(0.05)
    assert stream.forget_idle_consumers(60_000) == []
    assert stream.forget_idle_consumers(20) == ["done"]  # "holding" keeps its entry
    names = [c["name"] for c in stream.client.xinfo_consumers(stream.key, stream.group)]
    assert names == [b"holding"] and len(holding) == 1


def test_stream_carries_impressions_beside_events_and_dead_letters_bad_ones(
    stream: RedisEventStream,
) -> None:
    shown = impression_record("r1", time.time(), {"user_id": "u1", "items": [
        {"item_id": "a", "score": 0.5}], "model_version": "3"}, 2.0)
    sent = events(1)
    stream.append(sent)
    stream.append_impressions([shown])
    stream.client.xadd(stream.key, {IMPRESSION_FIELD: b'{"rec_id": "r2"}'})  # no user, no time
    read = stream.read("a", count=10, block_ms=10)
    assert [(e.event, e.impression, e.error is None) for e in read[:2]] == [
        (sent[0], None, True), (None, shown, True)]
    assert read[2].impression is None and "user_id" in (read[2].error or "")
    stream.dead_letter(read[2:])
    dead = stream.client.xrange(stream.dead_key)
    assert dead[0][1][IMPRESSION_FIELD] == b'{"rec_id": "r2"}'  # kept as it came

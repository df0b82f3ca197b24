"""Event rate one stream consumer sustains (``make bench-stream``).

Starts its own Valkey (the embedded binary, a free port) and a throw-away Feast repo (the
project's definitions applied, nothing materialized), fills a Redis stream with synthetic
accepted events the way the service appends them (batches through
:meth:`~recsys.events.stream.RedisEventStream.append`), then lets one
:class:`~recsys.features.stream_consumer.StreamConsumer` in this process drain it: durable
log append (fsync), online push through Feast once per ``event_id`` under the users' locks,
cache invalidation, acknowledgement. Prints one JSON object on stdout:

* ``append_events_per_second``: events one producer appends (50 a batch, as a busy API);
* ``consume_events_per_second``: events one consumer processes end to end, per batch size;
* ``consumer_cpu_seconds_per_1000``: this process's CPU per 1,000 events consumed;
* ``stream_bytes_per_event``: Redis memory of the stream per entry (to size its MAXLEN).

Usage: ``python -m benchmarks.stream [--events 20000] [--users 2000]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

from benchmarks.serving_probe import free_port
from recsys.events.event_log import EventLog
from recsys.events.impressions import ImpressionLog
from recsys.events.schema import Event
from recsys.events.stream import RedisEventStream, open_event_stream
from recsys.features.online_events import OnlineEventWriter
from recsys.features.store import apply_definitions, get_feature_store
from recsys.features.stream_consumer import StreamConsumer
from recsys.platform.redis_server import connect, resolve_redis, stop_embedded
from recsys.platform.settings import Settings


def synthetic(n: int, users: int, tag: str) -> list[Event]:
    now = pd.Timestamp.now(tz="UTC")
    return [Event(event_id=f"{tag}-{i}", user_id=f"u{i % users}", item_id=f"i{i % 997}",
                  event_type="view", timestamp=now) for i in range(n)]


def consume(settings: Settings, events: list[Event], batch: int) -> dict[str, float]:
    stream = open_event_stream(settings.model_copy(
        update={"event_stream_key": f"bench:{uuid.uuid4().hex}"}))
    assert isinstance(stream, RedisEventStream)
    start = time.perf_counter()
    for first in range(0, len(events), 50):
        stream.append(events[first:first + 50])
    appended = time.perf_counter() - start
    size = stream.client.memory_usage(stream.key, samples=0) / stream.client.xlen(stream.key)
    store = get_feature_store(settings)
    writer = OnlineEventWriter(store, connect(resolve_redis(settings).url))
    consumer = StreamConsumer(stream, EventLog(settings.event_log_dir / f"batch-{batch}"),
                              ImpressionLog(settings.impression_log_dir), writer, "bench",
                              batch=batch, block_ms=10)
    consumer.step()  # warm: Feast's registry and the Redis connections
    warm = consumer.processed
    cpu, start = time.process_time(), time.perf_counter()
    while stream.backlog()["lag"] or stream.backlog()["pending"]:
        consumer.step()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    done = consumer.processed - warm
    return {"append_events_per_second": round(len(events) / appended),
            "stream_bytes_per_event": round(size),
            "consume_events_per_second": round(done / elapsed),
            "consumer_cpu_seconds_per_1000": round(cpu / done * 1000, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 500])
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    settings = Settings(data_dir=root / "data", feature_repo_dir=root / "repo",
                        embedded_redis_port=free_port(), redis_url=None, event_stream="redis")
    resolve_redis(settings)
    try:
        apply_definitions(get_feature_store(settings))
        results = {}
        for batch in args.batches:
            events = synthetic(args.events, args.users, f"b{batch}")
            results[f"batch_{batch}"] = consume(settings, events, batch)
            print(f"batch {batch}: {results[f'batch_{batch}']}", file=sys.stderr, flush=True)
    finally:
        stop_embedded(settings)
    print(json.dumps({"events": args.events, "users": args.users, **results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

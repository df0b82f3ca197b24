"""A service replica's event intake in its own process, for the stream tests:
``python -m tests.integration.stream_replica PREFIX N`` accepts N events (users
``PREFIX-u<k>``) in batches through :class:`serving.intake.EventIntake` with the stream the
environment configures, and prints each accepted event id, one a line."""

import sys
import tempfile
from pathlib import Path

import pandas as pd

from recsys.events.event_log import EventLog
from recsys.events.schema import Event
from recsys.events.stream import open_event_stream
from recsys.features.store import get_feature_store
from recsys.platform.redis_server import resolve_redis
from recsys.platform.settings import get_settings
from serving.breaker import Breaker
from serving.cache import ResponseCache
from serving.intake import EventIntake


def main(prefix: str, n: int, batch: int = 25) -> None:
    settings = get_settings()
    stream = open_event_stream(settings)
    assert stream is not None, "RECSYS_EVENT_STREAM must select a stream"
    own = Path(tempfile.mkdtemp())  # as on its own host: its log and outbox stay unused
    intake = EventIntake(EventLog(own / "log"), get_feature_store(settings), Breaker(),
                         ResponseCache(resolve_redis(settings).url, 300, Breaker()),
                         own / "outbox", replay_seconds=0, stream=stream)
    now = pd.Timestamp.now(tz="UTC")
    events = [Event(event_id=f"{prefix}-{i}", user_id=f"{prefix}-u{i % 10}",
                    item_id=f"{prefix}-i{i}", event_type="view", timestamp=now)
              for i in range(n)]
    for start in range(0, n, batch):
        chunk = events[start:start + batch]
        intake.accept(chunk)
        print("\n".join(event.event_id for event in chunk), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""Event intake: the one owner of what happens to an accepted event.

An event batch is appended (fsync'd) to the durable event log first, so an acknowledged
event is never lost. Then each user's ``recent_items`` are pushed to the online store
through Feast (:func:`recsys.features.online_push.push_recent`):

* once per ``event_id``: a pushed event leaves a marker in Redis (kept
  ``dedupe_seconds``), and a retry of it is not counted again;
* atomically per user: the read-modify-write of a user's list runs under a Redis lock (users
  are spread over ``LOCK_STRIPES`` locks), so concurrent posts for one user keep every item;
* at least once: a batch that cannot be pushed (Redis down, breaker open) is written to a
  durable outbox, and a background thread replays it once Redis answers again.

Last, the users' cached responses are invalidated. The service holds one intake for its
life; model swaps do not touch it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import redis
from feast import FeatureStore
from redis.cluster import RedisCluster

from recsys.events.event_log import EventLog
from recsys.events.schema import Event
from recsys.features.names import RECENT_ITEMS, feature_ref
from recsys.features.online_push import push_recent
from recsys.features.online_reader import EntityFeatureReader
from serving.breaker import Breaker
from serving.cache import ResponseCache
from serving.metrics import EVENT_TYPES, EVENTS

logger = logging.getLogger(__name__)

LOCK_STRIPES = 64
MARKER = "recsys:pushed:"
_ERRORS = (redis.RedisError, OSError)


class EventIntake:
    """Log, push once (or queue for replay), invalidate."""

    def __init__(self, log: EventLog, store: FeatureStore, breaker: Breaker,
                 cache: ResponseCache, outbox_dir: Path, dedupe_seconds: int = 7 * 86400,
                 replay_seconds: float = 2.0, user_ttl_seconds: int = 30 * 86400):
        self.log, self.store, self.breaker, self.cache = log, store, breaker, cache
        self.client: redis.Redis | RedisCluster = cache.client
        self.outbox = Path(outbox_dir)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.dedupe_seconds, self.user_ttl_seconds = dedupe_seconds, user_ttl_seconds
        # The Redis key of a user's online row, to let rows of users who stop coming expire.
        self._user_rows = EntityFeatureReader(store, [feature_ref(RECENT_ITEMS)], "user_id")
        self._sequence = 0
        self._outbox_lock = threading.Lock()
        self._stop = threading.Event()
        for stale in self.outbox.glob(".claimed-*"):  # a worker died while replaying it
            if time.time() - stale.stat().st_mtime > 60:
                os.replace(stale, self.outbox / stale.name.split("-", 2)[2])
        if replay_seconds > 0:
            threading.Thread(target=self._replay_loop, args=(replay_seconds,),
                             name="push-replay", daemon=True).start()

    def accept(self, events: Sequence[Event]) -> int:
        """Take a validated batch; returns the number of users pushed online now (0 when
        the online store could not be reached: the batch is then in the log and the outbox)."""
        self.log.append_records(events)
        for event in events:
            EVENT_TYPES.labels(event_type=event.event_type.value).inc()
        pushed = 0
        if self.breaker.allow():
            try:
                pushed = self.push(events)
                self.breaker.succeeded()
            except Exception as exc:  # logged durably already; replayed from the outbox
                logger.warning("online push failed, queued for replay: %s", exc)
                self.breaker.failed()
                self._to_outbox(events)
        else:
            self._to_outbox(events)
        self.cache.invalidate(sorted({event.user_id for event in events}))
        return pushed

    def push(self, events: Sequence[Event]) -> int:
        """Push the events not pushed before, under the users' locks; returns the users."""
        stripes = sorted({zlib.crc32(e.user_id.encode()) % LOCK_STRIPES for e in events})
        with ExitStack() as held:
            for stripe in stripes:
                # Short waits: a lock left by a crash (or restored with a Redis snapshot)
                # expires in seconds, and a batch that cannot get one goes to the outbox.
                lock = self.client.lock(f"recsys:lock:recent:{stripe}", timeout=5,
                                        blocking_timeout=5)
                if not lock.acquire():
                    raise TimeoutError(f"lock stripe {stripe} busy for 5 s")
                held.callback(lock.release)
            ids = list(dict.fromkeys(e.event_id for e in events))
            # markers of one batch are spread over a cluster's slots: one MGET per node
            mget = getattr(self.client, "mget_nonatomic", self.client.mget)
            done = mget([MARKER + i for i in ids])
            pushed_before = {i for i, flag in zip(ids, done, strict=True) if flag}
            fresh = list({e.event_id: e for e in events
                          if e.event_id not in pushed_before}.values())
            users = push_recent(self.store, fresh)
            with self.client.pipeline(transaction=False) as pipe:
                for event in fresh:
                    pipe.set(MARKER + event.event_id, 1, ex=self.dedupe_seconds)
                pipe.execute()
            self._expire_rows(users)
        EVENTS.labels(outcome="pushed").inc(len(fresh))
        if len(fresh) < len(events):
            EVENTS.labels(outcome="duplicate").inc(len(events) - len(fresh))
        return len(users)

    def _expire_rows(self, users: list[str]) -> None:
        """Give pushed users' online rows a TTL, renewed by each push (a user who comes back
        after it is served from their session until the next materialization)."""
        keys = [found[0] for user in users if (found := self._user_rows.hash_read(user))]
        if not keys or not self.user_ttl_seconds:
            return
        client = self._user_rows.client
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.expire(key, self.user_ttl_seconds)
            pipe.execute()

    def _to_outbox(self, events: Sequence[Event]) -> None:
        """Write the batch to a new outbox file, durably (the replay reads it back)."""
        with self._outbox_lock:
            self._sequence += 1
            name = f"{time.time_ns()}-{os.getpid()}-{self._sequence}.jsonl"
        tmp = self.outbox / f".{name}"
        with open(tmp, "w") as out:
            for event in events:
                out.write(event.model_dump_json() + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.outbox / name)
        EVENTS.labels(outcome="queued").inc(len(events))

    def replay(self) -> int:
        """Push every outbox batch, oldest first, deleting each once pushed; returns the
        events replayed. Stops at the first failure (the rest waits for the next round)."""
        replayed = 0
        for path in sorted(self.outbox.glob("*.jsonl")):
            claimed = path.with_name(f".claimed-{os.getpid()}-{path.name}")
            try:  # one worker replays a batch; the others find it gone
                os.rename(path, claimed)
            except FileNotFoundError:
                continue
            events = [Event.model_validate(json.loads(line))
                      for line in claimed.read_text().splitlines() if line.strip()]
            try:
                self.push(events)
            except BaseException:
                os.rename(claimed, path)  # back for the next round
                raise
            claimed.unlink()
            EVENTS.labels(outcome="replayed").inc(len(events))
            replayed += len(events)
            self.cache.invalidate(sorted({event.user_id for event in events}))
        return replayed

    def _replay_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            if not any(self.outbox.glob("*.jsonl")) or not self.breaker.allow():
                continue
            try:
                if replayed := self.replay():
                    logger.info("replayed %d events to the online store", replayed)
                self.breaker.succeeded()
            except Exception as exc:
                logger.warning("push replay failed, will retry: %s", exc)
                self.breaker.failed()

    def stop(self) -> None:
        self._stop.set()

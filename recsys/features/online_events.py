"""Accepted events into the online store: once per ``event_id``, atomically per user.

The one writer of users' ``recent_items`` from live events, used by the service (the local
profile) and by the stream consumers (:mod:`recsys.features.stream_consumer`) alike:

* once per ``event_id``: a pushed event leaves a marker in Redis (kept ``dedupe_seconds``),
  and a retry or a redelivery of it is not counted again;
* atomically per user: the read-modify-write of a user's list runs under a Redis lock (users
  are spread over :data:`LOCK_STRIPES` locks), so concurrent pushes for one user, from any
  process, keep every item;
* pushed rows get a TTL renewed by each push, so the rows of users who stop coming expire.

After a push the users' cached responses are made stale (:func:`invalidate_responses`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import redis
from feast import FeatureStore
from redis.cluster import RedisCluster

from recsys.events.schema import Event
from recsys.features.names import RECENT_ITEMS, feature_ref
from recsys.features.online_push import push_recent
from recsys.features.online_reader import EntityFeatureReader
from recsys.platform.redis_cluster import colocated_key

LOCK_STRIPES = 64
MARKER = "recsys:pushed:"
#: A user's cached responses: one hash with a field per request variant and a generation
#: ``gen`` that every event bumps (the service's response cache reads it).
RESPONSE_PREFIX = b"recsys:recs:"


@dataclass(frozen=True)
class PushOutcome:
    """What a push did: the users pushed, the events new to the online store and the
    events pushed before (retries, redeliveries)."""

    users: list[str]
    fresh: int
    duplicates: int


class OnlineEventWriter:
    """Push events' items to users' ``recent_items`` once per ``event_id``, under locks.

    Parameters
    ----------
    store : FeatureStore
        The platform's store (its push source and online rows).
    client : redis.Redis or RedisCluster
        The Redis holding the locks, markers and cached responses.
    dedupe_seconds : int
        How long a pushed ``event_id`` is remembered.
    user_ttl_seconds : int
        Lifetime of a pushed user's online row, renewed by each push (0: none).
    lock_seconds : float
        Lifetime of a user lock stripe, and the longest wait for one.
    """

    def __init__(self, store: FeatureStore, client: redis.Redis | RedisCluster,
                 dedupe_seconds: int = 7 * 86400, user_ttl_seconds: int = 30 * 86400,
                 lock_seconds: float = 5.0) -> None:
        self.store, self.client = store, client
        self.dedupe_seconds, self.user_ttl_seconds = dedupe_seconds, user_ttl_seconds
        self.lock_seconds = lock_seconds
        # The Redis key of a user's online row, to let rows of users who stop coming expire.
        self._user_rows = EntityFeatureReader(store, [feature_ref(RECENT_ITEMS)], "user_id")

    def push(self, events: Sequence[Event]) -> PushOutcome:
        """Push the events not pushed before, under the users' locks.

        Raises
        ------
        TimeoutError
            A lock stripe stayed busy for ``lock_seconds``.
        redis.RedisError, OSError
            Redis failed; nothing was marked, so the whole batch may be pushed again.
        """
        stripes = sorted({zlib.crc32(e.user_id.encode()) % LOCK_STRIPES for e in events})
        with ExitStack() as held:
            for stripe in stripes:
                # Short waits: a lock left by a crash (or restored with a Redis snapshot)
                # expires in seconds, and a batch that cannot get one is retried later.
                lock = self.client.lock(f"recsys:lock:recent:{stripe}",
                                        timeout=self.lock_seconds,
                                        blocking_timeout=self.lock_seconds)
                if not lock.acquire():
                    raise TimeoutError(f"lock stripe {stripe} busy for {self.lock_seconds} s")
                held.callback(lock.release)
            ids = list(dict.fromkeys(e.event_id for e in events))
            # markers of one batch are spread over a cluster's slots: one MGET per node
            mget = getattr(self.client, "mget_nonatomic", self.client.mget)
            done = mget([MARKER + i for i in ids]) if ids else []
            pushed_before = {i for i, flag in zip(ids, done, strict=True) if flag}
            fresh = list({e.event_id: e for e in events
                          if e.event_id not in pushed_before}.values())
            users = push_recent(self.store, fresh)
            with self.client.pipeline(transaction=False) as pipe:
                for event in fresh:
                    pipe.set(MARKER + event.event_id, 1, ex=self.dedupe_seconds)
                pipe.execute()
            self._expire_rows(users)
        return PushOutcome(users=users, fresh=len(fresh), duplicates=len(events) - len(fresh))

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


    def invalidate(self, user_ids: Sequence[str], ttl_seconds: int) -> None:
        """Make every cached response of ``user_ids`` stale: bump each user's generation.

        ``ttl_seconds`` bounds the life of a generation written to a user with no cached
        response (the hash would otherwise stay forever). Raises on Redis errors.
        """
        clustered = isinstance(self.client, RedisCluster)
        with self.client.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                key = response_key(user_id, self._user_rows.row_key(user_id) if clustered
                                   else None)
                pipe.hincrby(key, "gen", 1)
                pipe.expire(key, max(ttl_seconds, 1))
            pipe.execute()


def response_key(user_id: str, row: bytes | None = None) -> bytes:
    """The Redis key of ``user_id``'s cached responses.

    On a Redis Cluster pass ``row``, the key of the user's online row: the hash is then
    ``recsys:recs:{<row's hash tag>}<user>``, in the row's slot, so that one script reads
    both (Feast's row keys carry no hash tag of their own). Without ``row``, or when no
    tag can name the row's slot, it is ``recsys:recs:<user>``.
    """
    if row is not None and (key := colocated_key(RESPONSE_PREFIX, row, user_id.encode())):
        return key
    return RESPONSE_PREFIX + user_id.encode()

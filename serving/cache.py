"""Per-user response cache in Redis, invalidated by the user's own events.

One Redis hash per user (``recsys:recs:<user>``) holds a field per request variant (model
version, length, filters) and a generation counter ``gen``. An event bumps the generation;
a cached value is stamped with the generation it was computed under, so a response computed
while an event arrived is never served afterwards. The hash expires ``ttl`` seconds after
its last write. Every operation degrades to a miss when Redis fails.
"""

from __future__ import annotations

import logging

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from serving.breaker import Breaker

logger = logging.getLogger(__name__)

PREFIX = "recsys:recs:"
_ERRORS = (redis.RedisError, OSError)


class ResponseCache:
    """Get and put serialized responses; ``ttl = 0`` disables caching."""

    def __init__(self, url: str, ttl: int, breaker: Breaker, timeout: float = 0.5):
        self.ttl = ttl
        self.breaker = breaker
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def get(self, user_id: str, variant: str) -> tuple[bytes | None, bytes]:
        """The cached body (None on a miss) and the generation to stamp a new value with."""
        if not self.ttl or not self.breaker.allow():
            return None, b""
        try:
            value, gen = self.client.hmget(PREFIX + user_id, (variant, "gen"))
        except _ERRORS as exc:
            self._failed(exc)
            return None, b""
        self.breaker.succeeded()
        gen = gen or b"0"
        if value is None:
            return None, gen
        stamp, _, body = value.partition(b"|")
        return (body if stamp == gen else None), gen

    def put(self, user_id: str, variant: str, gen: bytes, body: bytes) -> None:
        if not self.ttl or not gen or not self.breaker.allow():
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hset(PREFIX + user_id, variant, gen + b"|" + body)
                pipe.expire(PREFIX + user_id, self.ttl)
                pipe.execute()
        except _ERRORS as exc:
            self._failed(exc)

    def invalidate(self, user_ids: list[str]) -> bool:
        """Make every cached response of ``user_ids`` stale; False if Redis failed."""
        if not user_ids:
            return True
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.hincrby(PREFIX + user_id, "gen", 1)
                    pipe.expire(PREFIX + user_id, max(self.ttl, 1))
                pipe.execute()
        except _ERRORS as exc:
            self._failed(exc)
            return False
        return True

    def ping(self) -> bool:
        """True when Redis answers (fails fast, for readiness)."""
        try:
            return bool(self.client.ping())
        except _ERRORS:
            return False

    def _failed(self, exc: Exception) -> None:
        logger.warning("response cache unavailable: %s", exc)
        self.breaker.failed()

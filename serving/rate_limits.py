"""Request rate limits on the shared Redis, failing open to an in-process limit.

The ``limits`` library's moving window on the service's Redis, exact (it counts the requests
of the last window, not an estimate): every worker and replica counts against the same
window, and one user's 600 requests in a minute get exactly 500 answers under ``500/minute``.
When Redis does not answer, the limiter falls back to the same strategy in process memory
(each worker then enforces the limit on its own share of the traffic) rather than refusing
requests: an outage of the limiter's store must not become an outage of the service. A
breaker spaces out the probes meanwhile.

On one Redis server (not a cluster) a request's limits cost one round trip:
:meth:`RateLimiter.admit` runs both (the key's sliding-window counter, then each user's
moving window) in one server-side script (:data:`_ADMIT`, the same algorithms as ``limits``'
strategies, on the server's clock), where ``limits`` would send a command per limit from
Python (measured: 0.21 ms of CPU and two round trips per request, against 0.04 ms and one).
A cluster keeps ``limits``' storage: a principal and its users live in different slots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import (
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.strategies import (
    RateLimiter as Strategy,
)
from redis.backoff import NoBackoff
from redis.retry import Retry

from recsys.platform.redis_server import is_cluster_url
from serving.breaker import Breaker

logger = logging.getLogger(__name__)

PREFIX = "recsys:limits:"

# A Lua function other scripts embed (:data:`ADMIT_LUA`): ``keys[1]`` the principal's counters
# (a hash: window number -> requests), ``keys[2..]`` each user's moving window (a list of
# request times, newest first, at most the limit long); the key's amount and window (ms), the
# users' amount and window (ms). Returns nil when admitted, else {0, which limit (0 the key,
# i >= 1 the i-th user), remaining, milliseconds until the window frees}.
ADMIT_LUA = """
local function admit(keys, ka, kw, ua, uw)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local window = math.floor(now / kw)
  local elapsed = now - window * kw
  local counts = redis.call('HMGET', keys[1], window, window - 1)
  local weighted = tonumber(counts[2] or '0') * (kw - elapsed) / kw + tonumber(counts[1] or '0')
  if weighted + 1 > ka then
    return {0, 0, math.max(0, math.floor(ka - weighted)), kw - elapsed}
  end
  redis.call('HINCRBY', keys[1], window, 1)
  redis.call('HDEL', keys[1], window - 2)
  redis.call('PEXPIRE', keys[1], 2 * kw)
  for i = 2, #keys do
    local oldest = redis.call('LINDEX', keys[i], ua - 1)
    if oldest and tonumber(oldest) > now - uw then
      return {0, i - 1, 0, tonumber(oldest) + uw - now}
    end
    redis.call('LPUSH', keys[i], now)
    redis.call('LTRIM', keys[i], 0, ua - 1)
    redis.call('PEXPIRE', keys[i], uw)
  end
  return nil
end
"""
# KEYS: the principal's counters, then each user's window; ARGV: the key's amount and
# window (ms), the users' amount and window (ms). Returns {1} when admitted, else admit's.
_ADMIT = ("if redis.replicate_commands then redis.replicate_commands() end\n" + ADMIT_LUA + """
return admit(KEYS, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
             tonumber(ARGV[4])) or {1}
""")


@dataclass(frozen=True)
class Verdict:
    """Whether a request may pass; for a refusal, what is left and when the window frees
    (``remaining`` and ``reset_seconds`` are -1 for an admitted request)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``RateLimit-*`` and ``Retry-After`` of a refusal (an admitted request carries only
        ``RateLimit-Limit``: its window is not read back)."""
        out = [(b"ratelimit-limit", str(self.limit).encode())]
        if not self.allowed:
            out += [(b"ratelimit-remaining", str(self.remaining).encode()),
                    (b"ratelimit-reset", str(self.reset_seconds).encode()),
                    (b"retry-after", str(self.reset_seconds).encode())]
        return out


@dataclass(frozen=True)
class Fold:
    """One request's limits for another script to check (:meth:`RateLimiter.fold`)."""

    limiter: RateLimiter
    keys: list[str]
    args: list[int]
    limits: tuple[str, str, str, tuple[str, ...]]  # key limit, subject, user limit, users


class RateLimiter:
    """``hit(limit, scope, identity)`` counts one request and says whether it may pass.

    ``exact`` limits use the moving window (one entry per request in the window: exact, for
    the per-user limit); the others the sliding-window counter (two counters per identity,
    for coarse per-key limits in the tens of thousands). The window's state is read back only
    for a refusal, which is the one answer that must carry it (``Retry-After``), so an
    admitted request costs one Redis command per limit.
    """

    def __init__(self, redis_url: str, timeout: float = 0.2, retry_seconds: float = 1.0):
        # redis:// and redis+cluster:// (one window key per identity: any slot will do)
        shared = storage_from_string(redis_url, key_prefix="recsys:limits",
                                     socket_timeout=timeout, socket_connect_timeout=timeout)
        local = MemoryStorage()
        self._strategies: dict[bool, tuple[Strategy, Strategy]] = {
            True: (MovingWindowRateLimiter(shared), MovingWindowRateLimiter(local)),
            False: (SlidingWindowCounterRateLimiter(shared),
                    SlidingWindowCounterRateLimiter(local)),
        }
        self._breaker = Breaker(retry_seconds)
        self._items: dict[str, RateLimitItem] = {}
        self._script = None
        if not is_cluster_url(redis_url):
            client = redis.Redis.from_url(redis_url, socket_timeout=timeout,
                                          socket_connect_timeout=timeout,
                                          retry=Retry(NoBackoff(), 0))
            self._script = client.register_script(_ADMIT)

    def item(self, limit: str) -> RateLimitItem:
        if limit not in self._items:
            self._items[limit] = parse(limit)
        return self._items[limit]

    def hit(self, limit: str, scope: str, identity: str, exact: bool = True) -> Verdict:
        item = self.item(limit)
        shared, local = self._strategies[exact]
        if self._breaker.allow():
            try:
                verdict = _hit(shared, item, scope, identity)
                self._breaker.succeeded()
                return verdict
            except Exception as exc:  # the store is down: count in process instead
                logger.warning("rate limit store unavailable, limiting in process: %s", exc)
                self._breaker.failed()
        return _hit(local, item, scope, identity)


    def admit(self, key_limit: str, subject: str, user_limit: str,
              users: Sequence[str]) -> Verdict:
        """Count one request of the principal ``subject`` against ``key_limit`` (sliding
        window counter) and, if it passes, of each of ``users`` against ``user_limit`` (exact
        moving window). The first refusal, else the verdict of the one user (the key's
        when there are none or several)."""
        if self._script is not None and self._breaker.allow():
            try:
                verdict = self._admit_shared(key_limit, subject, user_limit, users)
                self._breaker.succeeded()
                return verdict
            except Exception as exc:  # the store is down: count in process instead
                logger.warning("rate limit store unavailable, limiting in process: %s", exc)
                self._breaker.failed()
        return self._admit_each(key_limit, subject, user_limit, users)

    def fold(self, key_limit: str, subject: str, user_limit: str,
             users: Sequence[str]) -> Fold | None:
        """:meth:`admit`'s check as keys and arguments for another script on the same Redis
        to run first (:data:`ADMIT_LUA`), so that a request's limits share the round trip
        of its cache lookup; None when they cannot (a cluster, or the store failing: then
        call :meth:`admit`). Report the outcome with :meth:`folded`."""
        if self._script is None or not self._breaker.allow():
            return None
        key, user = self.item(key_limit), self.item(user_limit)
        return Fold(self, [f"{PREFIX}key:{subject}", *(f"{PREFIX}user:{u}" for u in users)],
                    [key.amount, key.get_expiry() * 1000, user.amount, user.get_expiry() * 1000],
                    (key_limit, subject, user_limit, tuple(users)))

    def folded(self, fold: Fold, refusal: Sequence | None, failure: Exception | None = None
               ) -> Verdict:
        """The verdict of a folded check: ``refusal`` the admit function's reply (None when
        admitted), or ``failure`` when the script did not run (then counted in process)."""
        if failure is not None:
            logger.warning("rate limit store unavailable, limiting in process: %s", failure)
            self._breaker.failed()
            return self._admit_each(*fold.limits)
        self._breaker.succeeded()
        return self._verdict(fold.limits[0], fold.limits[2], len(fold.limits[3]),
                             refusal or [1])

    def _admit_shared(self, key_limit: str, subject: str, user_limit: str,
                      users: Sequence[str]) -> Verdict:
        key, user = self.item(key_limit), self.item(user_limit)
        assert self._script is not None
        reply = self._script(
            keys=[f"{PREFIX}key:{subject}", *(f"{PREFIX}user:{u}" for u in users)],
            args=[key.amount, key.get_expiry() * 1000, user.amount, user.get_expiry() * 1000])
        return self._verdict(key_limit, user_limit, len(users), reply)

    def _verdict(self, key_limit: str, user_limit: str, n_users: int, reply: Sequence
                 ) -> Verdict:
        key, user = self.item(key_limit), self.item(user_limit)
        if reply[0]:
            return Verdict(True, (user if n_users == 1 else key).amount, -1, -1)
        refused = user if reply[1] else key
        return Verdict(False, refused.amount, int(reply[2]), max(1, -(-int(reply[3]) // 1000)))

    def _admit_each(self, key_limit: str, subject: str, user_limit: str,
                    users: Sequence[str]) -> Verdict:
        """:meth:`admit` one limit at a time through ``limits`` (a cluster, or in process)."""
        verdict = self.hit(key_limit, "principal", subject, exact=False)
        if not verdict.allowed:
            return verdict
        for user in users:
            user_verdict = self.hit(user_limit, "user", user)
            if not user_verdict.allowed or len(users) == 1:
                return user_verdict
        return verdict


def _hit(strategy: Strategy, item: RateLimitItem, scope: str, identity: str) -> Verdict:
    if strategy.hit(item, scope, identity):
        return Verdict(True, item.amount, -1, -1)
    stats = strategy.get_window_stats(item, scope, identity)
    reset = max(1, int(stats.reset_time - time.time() + 0.999))
    return Verdict(False, item.amount, max(0, stats.remaining), reset)

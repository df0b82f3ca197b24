"""Request rate limits on the shared Redis, failing open to an in-process limit.

The ``limits`` library's moving window on the service's Redis, exact (it counts the requests
of the last window, not an estimate): every worker and replica counts against the same
window, and one user's 600 requests in a minute get exactly 500 answers under ``500/minute``.
When Redis does not answer, the limiter falls back to the same strategy in process memory
(each worker then enforces the limit on its own share of the traffic) rather than refusing
requests: an outage of the limiter's store must not become an outage of the service. A
breaker spaces out the probes meanwhile.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import (
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.strategies import (
    RateLimiter as Strategy,
)

from serving.breaker import Breaker

logger = logging.getLogger(__name__)


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


def _hit(strategy: Strategy, item: RateLimitItem, scope: str, identity: str) -> Verdict:
    if strategy.hit(item, scope, identity):
        return Verdict(True, item.amount, -1, -1)
    stats = strategy.get_window_stats(item, scope, identity)
    reset = max(1, int(stats.reset_time - time.time() + 0.999))
    return Verdict(False, item.amount, max(0, stats.remaining), reset)

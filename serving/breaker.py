"""A circuit breaker for the online store: after a failure, skip Redis for a short while.

When Redis is down every call would otherwise pay a connection attempt (and redis-py's
retries) before falling back; the breaker makes the fallback immediate and lets one call
through per interval to notice the recovery, so no restart is needed.
"""

from __future__ import annotations

import threading
import time


class Breaker:
    """Open for ``retry_seconds`` after :meth:`failed`; :meth:`allow` says whether to try."""

    def __init__(self, retry_seconds: float = 1.0):
        self.retry_seconds = retry_seconds
        self._open_until = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """True when closed, or when the open interval is over (one caller probes)."""
        if self._open_until == 0.0:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._open_until:
                return False
            self._open_until = now + self.retry_seconds  # others wait while this one probes
            return True

    def failed(self) -> None:
        self._open_until = time.monotonic() + self.retry_seconds

    def succeeded(self) -> None:
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._open_until != 0.0

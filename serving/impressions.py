"""Impression logging off the request path: one ``deque.append`` per response.

A request hands its ``rec_id``, the time, what it served and its latency to
:meth:`ImpressionRecorder.record`: a ranked list as the response object it was serialized
from, a cached one as its JSON body. A background thread wakes every ``flush_seconds``,
reads the impressions out of them and hands them to its sink in one batch. A ranked list's
fields are read off the object (no JSON to parse); a cached body is parsed once per worker
while its impression is remembered (:data:`REMEMBERED_BODIES`), since a cached list is
served again and again with the same bytes. The sink is the service's
:meth:`serving.intake.EventIntake.accept_impressions`, which takes the events' path (the
durable :class:`recsys.events.impressions.ImpressionLog` in one fsync'd write, or the shared
event stream). A crash can lose at most the impressions of the last
flush interval (never an event: those are logged before ``POST /events`` answers);
:meth:`flush` at shutdown writes the rest.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from recsys.events.impressions import impression_record

logger = logging.getLogger(__name__)

Sink = Callable[[Sequence[dict]], None]
#: Cached bodies whose impression fields are kept parsed (the table is emptied when full).
REMEMBERED_BODIES = 4096


def served_fields(response: Any) -> Mapping:
    """The fields of a response object (:class:`serving.schemas.RecommendResponse`) that
    make its impression, as ``json.loads`` of its JSON body has them."""
    return {"user_id": response.user_id, "model_version": response.model_version,
            "experiment_id": response.experiment_id, "variant": response.variant,
            "fallback": response.fallback,
            "items": [{"item_id": item.item_id, "score": item.score}
                      for item in response.items]}


def new_rec_id() -> str:
    """A unique id of one served list (random, 32 hex characters)."""
    return uuid.uuid4().hex


class ImpressionRecorder:
    """Queues served lists and writes them to ``sink`` in the background."""

    def __init__(self, sink: Sink, flush_seconds: float = 0.2, max_pending: int = 1_000_000):
        self.sink, self.flush_seconds = sink, flush_seconds
        self._pending: deque[tuple[str, float, Any, float]] = deque(maxlen=max_pending)
        self._parsed: dict[bytes, Mapping] = {}  # a cached body -> its json.loads
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        if flush_seconds > 0:
            threading.Thread(target=self._loop, name="impression-flush", daemon=True).start()

    def record(self, rec_id: str, at: float, served: Any, latency_ms: float) -> None:
        """Queue one served list (the only work on the request path): its JSON body
        (bytes), or the response object it was serialized from."""
        self._pending.append((rec_id, at, served, latency_ms))

    def _fields(self, served: Any) -> Mapping:
        if not isinstance(served, bytes):
            return served_fields(served)
        fields = self._parsed.get(served)
        if fields is None:
            fields = json.loads(served)
            if len(self._parsed) >= REMEMBERED_BODIES:
                self._parsed.clear()
            self._parsed[served] = fields
        return fields

    def flush(self) -> int:
        """Write every queued impression; returns how many."""
        with self._flush_lock:
            taken = []
            while self._pending:
                taken.append(self._pending.popleft())
            if not taken:
                return 0
            records = []
            for rec_id, at, served, latency_ms in taken:
                try:
                    records.append(impression_record(rec_id, at, self._fields(served),
                                                     latency_ms))
                except (ValueError, KeyError) as exc:  # a body that is not a list of items
                    logger.warning("impression %s not logged: %s", rec_id, exc)
            try:
                self.sink(records)
            except Exception:
                self._pending.extendleft(reversed(taken))  # kept for the next round
                raise
            return len(records)

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:
                logger.exception("impression flush failed; will retry")
                time.sleep(self.flush_seconds)

    def stop(self) -> None:
        self._stop.set()
        self.flush()

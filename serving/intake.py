"""Event intake: the one owner of what happens to an accepted event.

An event batch is appended (fsync'd) to the durable event log first, so an acknowledged
event is never lost; then each user's ``recent_items`` are pushed to the online store
through Feast (:func:`recsys.features.online_push.push_recent`), skipped while the Redis
breaker is open (the log is what the daily materialization reads, so the online state
catches up); then the users' cached responses are invalidated. The service holds one intake
for its life; model swaps do not touch it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from feast import FeatureStore

from recsys.events.event_log import EventLog
from recsys.events.schema import Event
from recsys.features.online_push import push_recent
from serving.breaker import Breaker
from serving.cache import ResponseCache

logger = logging.getLogger(__name__)


class EventIntake:
    """Log, push and invalidate, in that order."""

    def __init__(self, log: EventLog, store: FeatureStore, breaker: Breaker,
                 cache: ResponseCache):
        self.log, self.store, self.breaker, self.cache = log, store, breaker, cache

    def accept(self, events: Sequence[Event]) -> int:
        """Take a validated batch; returns the number of users pushed online (0 when the
        online store could not be reached: the events are in the log all the same)."""
        self.log.append_records(events)
        pushed = 0
        if self.breaker.allow():
            try:
                pushed = len(push_recent(self.store, events))
                self.breaker.succeeded()
            except Exception as exc:  # logged durably already; the daily batch catches up
                logger.warning("online push failed, events are in the log only: %s", exc)
                self.breaker.failed()
        self.cache.invalidate(sorted({event.user_id for event in events}))
        return pushed

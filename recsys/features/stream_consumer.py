"""Stream consumer: ``python -m recsys.features.stream_consumer`` (``make consume``).

Reads the shared event stream (:mod:`recsys.events.stream`) in its consumer group and, for
each batch, in this order:

1. appends the events to the durable event log (fsync'd JSON lines, the files the Dagster
   ``raw_events`` asset reads, exactly as the service writes them in the local profile);
2. pushes them online once per ``event_id`` under the users' locks
   (:class:`~recsys.features.online_events.OnlineEventWriter`) and makes the users' cached
   responses stale;
3. appends the impressions (served lists) to the impression log
   (:class:`~recsys.events.impressions.ImpressionLog`, which the experiment analysis reads,
   as the service writes it in the local profile);
4. acknowledges the entries.

A consumer killed anywhere before 4 leaves its entries pending: it resumes them when
restarted under the same ``--name``, and any consumer of the group claims them once they
have been idle ``RECSYS_EVENT_STREAM_CLAIM_IDLE_MS``. Such a redelivery appends the events
to the log again (``validated_events`` keeps one row per ``event_id``) and finds them pushed
already (their markers); impressions logged twice are read once (by ``rec_id``). Run as
many consumers as the event rate needs; each names itself ``<host>-<pid>`` unless given
``--name``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence

from recsys.events.event_log import EventLog
from recsys.events.impressions import ImpressionLog
from recsys.events.stream import EventStream, StreamEntry, open_event_stream
from recsys.features.online_events import OnlineEventWriter
from recsys.features.store import get_feature_store
from recsys.platform.redis_server import REDIS_ERRORS, connect, resolve_redis
from recsys.platform.settings import get_settings

logger = logging.getLogger(__name__)

#: A consumer with nothing pending and idle this long has gone; it leaves the group.
FORGET_IDLE_MS = 86_400_000


class StreamConsumer:
    """One member of the stream's consumer group.

    Parameters
    ----------
    stream : EventStream
        The shared stream (its group is created if missing).
    log : EventLog
        The durable event log the batches' events are appended to.
    impression_log : ImpressionLog
        The impression log the batches' impressions are appended to.
    writer : OnlineEventWriter
        The online push (its Redis also holds the users' cached responses).
    name : str
        This consumer's name in the group.
    batch : int
        Most entries read per round.
    block_ms : int
        Longest wait for new entries in one read, milliseconds.
    claim_idle_ms : int
        Entries pending this long with another consumer are claimed.
    response_ttl_seconds : int
        Lifetime of a cached-response generation bumped for a user with none cached.
    """

    def __init__(self, stream: EventStream, log: EventLog, impression_log: ImpressionLog,
                 writer: OnlineEventWriter, name: str, batch: int = 500, block_ms: int = 1000,
                 claim_idle_ms: int = 30_000, response_ttl_seconds: int = 300) -> None:
        self.stream, self.log, self.writer, self.name = stream, log, writer, name
        self.impression_log = impression_log
        self.batch, self.block_ms, self.claim_idle_ms = batch, block_ms, claim_idle_ms
        self.response_ttl_seconds = response_ttl_seconds
        self.processed = 0
        self._next_claim = self._next_prune = 0.0
        stream.ensure_group()

    def step(self) -> int:
        """One round: this consumer's own unacknowledged entries first (a failed batch, or
        a restart under the same name), then those idle with a dead consumer, then new
        ones. Returns the entries processed (0 when none came within ``block_ms``)."""
        entries = self.stream.pending(self.name, self.batch)
        if not entries and time.monotonic() >= self._next_claim:
            entries = self.stream.claim(self.name, self.claim_idle_ms, self.batch)
            if entries:
                logger.warning("claimed %d entries idle for %d ms with another consumer",
                               len(entries), self.claim_idle_ms)
            else:  # nothing stale now; look again after a fraction of the idle time
                self._next_claim = time.monotonic() + min(self.claim_idle_ms / 4000, 5.0)
                if time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + 600
                    if gone := self.stream.forget_idle_consumers(FORGET_IDLE_MS):
                        logger.info("removed consumers idle for a day: %s", gone)
        if not entries:
            entries = self.stream.read(self.name, self.batch, self.block_ms)
        if entries:
            self.process(entries)
        return len(entries)

    def process(self, entries: Sequence[StreamEntry]) -> None:
        """Log events durably, push them online, invalidate; log impressions; then
        acknowledge ``entries``."""
        self.stream.dead_letter([entry for entry in entries if entry.error is not None])
        events = [entry.event for entry in entries if entry.event is not None]
        if events:
            self.log.append_records(events)
            self.writer.push(events)
            self.writer.invalidate(sorted({e.user_id for e in events}),
                                   self.response_ttl_seconds)
        if impressions := [entry.impression for entry in entries if entry.impression]:
            self.impression_log.append(impressions)
        self.stream.ack([entry.entry_id for entry in entries if entry.error is None])
        self.processed += len(entries)

    def run(self, stop: threading.Event, retry_seconds: float = 1.0,
            reconnect: Callable[[], tuple[EventStream, OnlineEventWriter]] | None = None,
            reconnect_after: int = 3) -> None:
        """Process rounds until ``stop`` is set; a failed round (Redis down, a busy lock)
        is retried after ``retry_seconds`` with its entries still pending. After
        ``reconnect_after`` failed rounds in a row, ``reconnect`` gives a new stream and
        writer (new clients: a cluster client can keep a dead primary in its slot map after
        a failover)."""
        logger.info("stream consumer %s started", self.name)
        failures = 0
        while not stop.is_set():
            try:
                self.step()
                failures = 0
            except (*REDIS_ERRORS, TimeoutError) as exc:
                failures += 1
                logger.warning("stream round failed (%d in a row), retrying: %s", failures, exc,
                               exc_info=failures == 1)
                if reconnect is not None and failures % reconnect_after == 0:
                    try:
                        self.stream, self.writer = reconnect()
                        logger.warning("reconnected to the stream and the online store")
                    except (*REDIS_ERRORS, TimeoutError) as again:
                        logger.warning("reconnecting failed: %s", again)
                stop.wait(retry_seconds)
        logger.info("stream consumer %s stopped after %d entries", self.name, self.processed)


def connect_consumer(block_ms: int = 1000) -> tuple[EventStream, OnlineEventWriter]:
    """The configured stream (``RECSYS_EVENT_STREAM``) and an online writer, on new clients."""
    settings = get_settings()
    stream = open_event_stream(settings, timeout=block_ms / 1000 + 5)
    if stream is None:
        raise SystemExit("RECSYS_EVENT_STREAM is 'local': the service writes the event log "
                         "itself and there is no stream to consume (set it to 'redis')")
    writer = OnlineEventWriter(get_feature_store(settings), connect(resolve_redis(settings).url))
    return stream, writer


def build_consumer(name: str | None = None, batch: int = 500, block_ms: int = 1000,
                   response_ttl_seconds: int = 300) -> StreamConsumer:
    """A consumer of the configured stream (``RECSYS_EVENT_STREAM``), logs and online store."""
    settings = get_settings()
    stream, writer = connect_consumer(block_ms)
    return StreamConsumer(stream, EventLog(settings.event_log_dir),
                          ImpressionLog(settings.impression_log_dir), writer,
                          name or f"{socket.gethostname()}-{os.getpid()}", batch=batch,
                          block_ms=block_ms, claim_idle_ms=settings.event_stream_claim_idle_ms,
                          response_ttl_seconds=response_ttl_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.features.stream_consumer",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", help="consumer name in the group (default: <host>-<pid>)")
    parser.add_argument("--batch", type=int, default=500, help="most entries per round")
    parser.add_argument("--block-ms", type=int, default=1000,
                        help="longest wait for new entries per read")
    parser.add_argument("--response-ttl", type=int, default=300,
                        help="the service's RECSYS_SERVING_CACHE_TTL_SECONDS")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    consumer = build_consumer(args.name, args.batch, args.block_ms, args.response_ttl)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # finish the batch in hand, then exit
        signal.signal(signum, lambda *_: stop.set())
    consumer.run(stop, reconnect=lambda: connect_consumer(args.block_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Event intake: the one owner of what happens to an accepted event.

Local profile (``RECSYS_EVENT_STREAM=local``, the default): a batch is appended (fsync'd)
to the durable event log first, so an acknowledged event is never lost. Then the users'
``recent_items`` are pushed to the online store once per ``event_id`` and atomically per
user (:class:`recsys.features.online_events.OnlineEventWriter`); a batch that cannot be
pushed (Redis down, breaker open) is written to a durable outbox, and a background thread
replays it once Redis answers again. Last, the users' cached responses are invalidated.

Stream profile (``RECSYS_EVENT_STREAM=redis``): the batch is appended to the shared event
stream (all of it or none) before the API answers; the stream consumers
(:mod:`recsys.features.stream_consumer`) write the log, push online and invalidate. A
batch the stream does not take (Redis down or failing over) goes to the durable outbox's
``stream/`` folder and is appended by the replay thread once the stream answers: it is
accepted either way. The service holds one intake for its life; model swaps do not touch it.

Impressions (the served lists the :class:`serving.impressions.ImpressionRecorder` hands
over in the background) take the same path: appended to the impression log in the local
profile; appended to the stream (whose consumers write the impression log), or else to the
outbox's ``impressions/`` folder for the replay, in the stream profile.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from feast import FeatureStore

from recsys.events.event_log import EventLog
from recsys.events.impressions import ImpressionLog, impression_from_json
from recsys.events.schema import Event
from recsys.events.stream import EventStream
from recsys.features.online_events import OnlineEventWriter
from recsys.platform.redis_server import REDIS_ERRORS
from serving.breaker import Breaker
from serving.cache import ResponseCache
from serving.metrics import EVENT_TYPES, EVENTS, IMPRESSIONS

logger = logging.getLogger(__name__)


class EventIntake:
    """Log, push once (or queue for replay), invalidate; or append to the stream.

    ``impression_log`` is where :meth:`accept_impressions` writes without a stream (and
    where impressions queued for a stream go if the stream was switched off since)."""

    def __init__(self, log: EventLog, store: FeatureStore, breaker: Breaker,
                 cache: ResponseCache, outbox_dir: Path, dedupe_seconds: int = 7 * 86400,
                 replay_seconds: float = 2.0, user_ttl_seconds: int = 30 * 86400,
                 stream: EventStream | None = None,
                 impression_log: ImpressionLog | None = None):
        self.log, self.breaker, self.cache, self.stream = log, breaker, cache, stream
        self.impression_log = impression_log
        self.writer = OnlineEventWriter(store, cache.client, dedupe_seconds, user_ttl_seconds)
        self.outbox = Path(outbox_dir)
        # Batches for the stream, not yet in it (nor in the log: the consumers write that).
        self.stream_outbox = self.outbox / "stream"
        self.impression_outbox = self.outbox / "impressions"
        for folder in (self.stream_outbox, self.impression_outbox):
            folder.mkdir(parents=True, exist_ok=True)
        self._sequence = 0
        self._outbox_lock = threading.Lock()
        self._stop = threading.Event()
        for folder in (self.outbox, self.stream_outbox, self.impression_outbox):
            for stale in folder.glob(".claimed-*"):  # a worker died while replaying it
                if time.time() - stale.stat().st_mtime > 60:
                    os.replace(stale, folder / stale.name.split("-", 2)[2])
        if replay_seconds > 0:
            threading.Thread(target=self._replay_loop, args=(replay_seconds,),
                             name="push-replay", daemon=True).start()

    def accept(self, events: Sequence[Event]) -> int:
        """Take a validated batch; returns the number of users pushed online now (0 when
        the online store could not be reached: the batch is then in the log and the outbox;
        always 0 with a stream: its consumers push)."""
        if self.stream is None:
            self.log.append_records(events)
        elif self._append_to_stream(self.stream.append, events):
            EVENTS.labels(outcome="streamed").inc(len(events))
        else:
            EVENTS.labels(outcome="queued").inc(self._to_outbox(_lines(events), self.stream_outbox))
        for event in events:  # accepted (in the log, the stream or its outbox)
            EVENT_TYPES.labels(event_type=event.event_type.value).inc()
        if self.stream is not None:
            return 0
        pushed = 0
        if self.breaker.allow():
            try:
                pushed = self.push(events)
                self.breaker.succeeded()
            except Exception as exc:  # logged durably already; replayed from the outbox
                logger.warning("online push failed, queued for replay: %s", exc)
                self.breaker.failed()
                EVENTS.labels(outcome="queued").inc(self._to_outbox(_lines(events), self.outbox))
        else:
            EVENTS.labels(outcome="queued").inc(self._to_outbox(_lines(events), self.outbox))
        self.cache.invalidate(sorted({event.user_id for event in events}))
        return pushed

    def push(self, events: Sequence[Event]) -> int:
        """Push the events not pushed before, under the users' locks; returns the users."""
        outcome = self.writer.push(events)
        EVENTS.labels(outcome="pushed").inc(outcome.fresh)
        if outcome.duplicates:
            EVENTS.labels(outcome="duplicate").inc(outcome.duplicates)
        return len(outcome.users)

    def accept_impressions(self, records: Sequence[Mapping]) -> None:
        """Log served lists (:func:`~recsys.events.impressions.impression_record` dicts):
        to the impression log, or to the stream (its outbox when it cannot be reached)."""
        if self.stream is None:
            self._log_impressions(records)
        elif self._append_to_stream(self.stream.append_impressions, records):
            IMPRESSIONS.labels(outcome="streamed").inc(len(records))
        else:
            lines = [json.dumps(record, separators=(",", ":")) for record in records]
            IMPRESSIONS.labels(outcome="queued").inc(
                self._to_outbox(lines, self.impression_outbox))

    def _log_impressions(self, records: Sequence[Mapping]) -> None:
        if self.impression_log is None:
            raise RuntimeError("impressions need an impression log without a stream")
        self.impression_log.append(records)
        IMPRESSIONS.labels(outcome="logged").inc(len(records))

    def _append_to_stream(self, append: Callable[[Sequence], object], batch: Sequence) -> bool:
        """``append(batch)`` to the stream; False when the stream cannot take it now (the
        caller writes it to the outbox)."""
        if not self.breaker.allow():
            return False
        try:
            append(batch)
        except REDIS_ERRORS as exc:
            # A timeout may hide an append that happened: the replay appends the batch
            # again and event_id (rec_id) absorbs the copy.
            logger.warning("stream append failed, queued for replay: %s", exc)
            self.breaker.failed()
            return False
        self.breaker.succeeded()
        return True

    def _to_outbox(self, lines: Sequence[str], folder: Path) -> int:
        """Write a batch (JSON lines) to a new outbox file, durably (the replay reads it
        back); returns the lines written (the caller counts them as queued)."""
        with self._outbox_lock:
            self._sequence += 1
            name = f"{time.time_ns()}-{os.getpid()}-{self._sequence}.jsonl"
        tmp = folder / f".{name}"
        with open(tmp, "w") as out:
            for line in lines:
                out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / name)
        return len(lines)

    def replay(self) -> int:
        """Forward every outbox batch, oldest first, deleting each once forwarded; returns
        the events and impressions replayed. Stops at the first failure (the rest waits for
        the next round).

        Batches of the local profile are pushed online; batches for the stream are appended
        to it (or, if the stream was switched off since, logged and pushed)."""
        def events(count: int) -> None:
            EVENTS.labels(outcome="replayed").inc(count)

        def impressions(count: int) -> None:
            IMPRESSIONS.labels(outcome="replayed").inc(count)

        replayed = self._drain(self.outbox, _event, self._push_replayed, events)
        replayed += self._drain(self.stream_outbox, _event, self._forward_streamed, events)
        return replayed + self._drain(self.impression_outbox, impression_from_json,
                                      self._forward_impressions, impressions)

    def _push_replayed(self, events: list[Event]) -> None:
        self.push(events)
        self.cache.invalidate(sorted({event.user_id for event in events}))

    def _forward_streamed(self, events: list[Event]) -> None:
        if self.stream is not None:
            self.stream.append(events)
            return
        self.log.append_records(events)
        self._push_replayed(events)

    def _forward_impressions(self, records: list[dict]) -> None:
        if self.stream is not None:
            self.stream.append_impressions(records)
        else:
            self._log_impressions(records)

    def _drain(self, folder: Path, parse: Callable[[str], object],
               forward: Callable[[list], None], replayed_count: Callable[[int], None]) -> int:
        replayed = 0
        for path in sorted(folder.glob("*.jsonl")):
            claimed = path.with_name(f".claimed-{os.getpid()}-{path.name}")
            try:  # one worker replays a batch; the others find it gone
                os.rename(path, claimed)
            except FileNotFoundError:
                continue
            batch = [parse(line) for line in claimed.read_text().splitlines() if line.strip()]
            try:
                forward(batch)
            except BaseException:
                os.rename(claimed, path)  # back for the next round
                raise
            claimed.unlink()
            replayed_count(len(batch))
            replayed += len(batch)
        return replayed

    def _pending(self) -> bool:
        return any(any(folder.glob("*.jsonl")) for folder in
                   (self.outbox, self.stream_outbox, self.impression_outbox))

    def _replay_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            if not self._pending() or not self.breaker.allow():
                continue
            try:
                if replayed := self.replay():
                    logger.info("replayed %d events and impressions from the outbox",
                                replayed)
                self.breaker.succeeded()
            except Exception as exc:
                logger.warning("outbox replay failed, will retry: %s", exc)
                self.breaker.failed()

    def stop(self) -> None:
        self._stop.set()


def _lines(events: Sequence[Event]) -> list[str]:
    return [event.model_dump_json() for event in events]


def _event(line: str) -> Event:
    return Event.model_validate(json.loads(line))

"""The shared event stream: accepted events on their way to the log and the online store,
and the impressions (served lists) on their way to the impression log.

Service replicas append the events they accept and the lists they serve; stream consumers
(:mod:`recsys.features.stream_consumer`) read them in a consumer group, write events to the
durable event log and push them online, write impressions to the impression log, and
acknowledge them only then. Delivery is at
least once: an entry read by a consumer that dies before acknowledging stays pending in the
group and another consumer claims it once it has been idle ``claim_idle_ms``; the duplicates
this can produce are absorbed by ``event_id`` (the online push keeps a marker per event,
``validated_events`` keeps the first row of each id) and by ``rec_id`` (the impression log
reads one list per id).

:class:`EventStream` is the interface; :class:`RedisEventStream` implements it with Redis
Streams (``XADD`` bounded by ``MAXLEN ~``, ``XREADGROUP``, ``XACK``, ``XAUTOCLAIM``). Which
one the platform uses is the setting ``RECSYS_EVENT_STREAM`` (:func:`open_event_stream`):
``local`` (the default) has no stream at all, the API writes the log itself.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
from pydantic import ValidationError
from redis.cluster import RedisCluster

from recsys.events.impressions import impression_from_json
from recsys.events.schema import Event
from recsys.platform.redis_server import connect, resolve_redis
from recsys.platform.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: The entry field that holds an event's JSON, and the one that holds an impression's.
FIELD = b"event"
IMPRESSION_FIELD = b"impression"


@dataclass(frozen=True)
class StreamEntry:
    """One stream entry: its id, and the event or the impression (an
    :func:`~recsys.events.impressions.impression_record` dict) it carries. An entry that
    cannot be decoded carries neither but an ``error``; such entries go to the dead-letter
    stream, never silently away."""

    entry_id: str
    event: Event | None
    payload: bytes
    error: str | None = None
    impression: dict | None = None
    field: bytes = FIELD


class EventStream(ABC):
    """Append events; consume them in a group with acknowledgement and claim of the entries
    of dead consumers."""

    @abstractmethod
    def append(self, events: Sequence[Event]) -> list[str]:
        """Append a batch, all of it or none; returns the entry ids. Raises when the stream
        cannot be reached (the caller keeps the batch and retries)."""

    @abstractmethod
    def append_impressions(self, records: Sequence[Mapping]) -> list[str]:
        """Append :func:`~recsys.events.impressions.impression_record` dicts as
        :meth:`append` appends events."""

    @abstractmethod
    def ensure_group(self) -> None:
        """Create the consumer group (reading from the stream's start) if it is missing."""

    @abstractmethod
    def read(self, consumer: str, count: int, block_ms: int) -> list[StreamEntry]:
        """Up to ``count`` entries no consumer of the group has read, waiting up to
        ``block_ms`` for the first one; they are pending for ``consumer`` until acknowledged."""

    @abstractmethod
    def pending(self, consumer: str, count: int) -> list[StreamEntry]:
        """Entries delivered to ``consumer`` and not acknowledged (a restart under the same
        name resumes with these)."""

    @abstractmethod
    def claim(self, consumer: str, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Take over up to ``count`` entries pending for longer than ``min_idle_ms`` with any
        consumer (one that died mid-batch)."""

    @abstractmethod
    def ack(self, entry_ids: Sequence[str]) -> int:
        """Acknowledge processed entries; returns how many were pending."""

    @abstractmethod
    def dead_letter(self, entries: Sequence[StreamEntry]) -> None:
        """Move undecodable entries to the dead-letter stream (kept with their reason)."""

    def forget_idle_consumers(self, min_idle_ms: int) -> list[str]:
        """Remove consumers idle ``min_idle_ms`` with nothing pending (gone for good: a
        consumer is named after its host and pid); returns their names."""
        return []

    @abstractmethod
    def backlog(self) -> dict[str, int]:
        """``length`` of the stream, ``pending`` entries and ``lag`` (not yet read)."""


class RedisEventStream(EventStream):
    """:class:`EventStream` on a Redis stream at ``key`` with the consumer group ``group``.

    Parameters
    ----------
    client : redis.Redis or RedisCluster
        The stream's Redis (its socket timeout must exceed the ``block_ms`` of reads).
    key, group : str
        Stream key and consumer group name.
    maxlen : int
        Approximate bound (``MAXLEN ~``): the oldest entries are trimmed beyond it whether
        read or not, so it must exceed the backlog of a consumer outage.
    """

    def __init__(self, client: redis.Redis | RedisCluster, key: str, group: str,
                 maxlen: int) -> None:
        self.client, self.key, self.group, self.maxlen = client, key, group, maxlen
        self.dead_key = f"{key}:dead"
        self._claim_cursor = "0-0"

    def append(self, events: Sequence[Event]) -> list[str]:
        return self._append(FIELD, [event.model_dump_json() for event in events])

    def append_impressions(self, records: Sequence[Mapping]) -> list[str]:
        return self._append(IMPRESSION_FIELD,
                            [json.dumps(record, separators=(",", ":")) for record in records])

    def _append(self, field: bytes, payloads: Sequence[str]) -> list[str]:
        if not payloads:
            return []
        # MULTI/EXEC: a batch is in the stream whole or not at all (one key: one slot).
        with self.client.pipeline(transaction=True) as pipe:
            for payload in payloads:
                pipe.xadd(self.key, {field: payload}, maxlen=self.maxlen, approximate=True)
            return [_text(entry_id) for entry_id in pipe.execute()]

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, consumer: str, count: int, block_ms: int) -> list[StreamEntry]:
        return self._read_group(consumer, ">", count, block_ms)

    def pending(self, consumer: str, count: int) -> list[StreamEntry]:
        return self._read_group(consumer, "0", count, None)

    def claim(self, consumer: str, min_idle_ms: int, count: int) -> list[StreamEntry]:
        cursor, claimed, deleted = self.client.xautoclaim(
            self.key, self.group, consumer, min_idle_ms, start_id=self._claim_cursor,
            count=count)[:3]
        # XAUTOCLAIM walks the pending list in pages; "0-0" means it reached the end.
        self._claim_cursor = _text(cursor)
        if deleted:
            logger.error("%d pending entries of %s were trimmed before being processed "
                         "(raise RECSYS_EVENT_STREAM_MAXLEN): %s", len(deleted), self.key,
                         [_text(d) for d in deleted][:10])
        return [_decode(entry_id, fields) for entry_id, fields in claimed if fields]

    def ack(self, entry_ids: Sequence[str]) -> int:
        return int(self.client.xack(self.key, self.group, *entry_ids)) if entry_ids else 0

    def dead_letter(self, entries: Sequence[StreamEntry]) -> None:
        if not entries:
            return
        with self.client.pipeline(transaction=True) as pipe:
            for entry in entries:
                pipe.xadd(self.dead_key, {b"entry_id": entry.entry_id,
                                          entry.field: entry.payload, b"error": entry.error or ""})
            pipe.xack(self.key, self.group, *[entry.entry_id for entry in entries])
            pipe.execute()
        logger.error("moved %d undecodable entries to %s", len(entries), self.dead_key)

    def forget_idle_consumers(self, min_idle_ms: int) -> list[str]:
        gone = []
        for consumer in self.client.xinfo_consumers(self.key, self.group):
            # A living consumer that was removed is recreated by its next read.
            if int(consumer["pending"]) == 0 and int(consumer["idle"]) >= min_idle_ms:
                self.client.xgroup_delconsumer(self.key, self.group, consumer["name"])
                gone.append(_text(consumer["name"]))
        return gone

    def backlog(self) -> dict[str, int]:
        length = int(self.client.xlen(self.key))
        for group in self.client.xinfo_groups(self.key):
            if _text(group["name"]) == self.group:
                return {"length": length, "pending": int(group["pending"]),
                        "lag": int(group.get("lag") or 0)}
        return {"length": length, "pending": 0, "lag": length}

    def _read_group(self, consumer: str, start: str, count: int,
                    block_ms: int | None) -> list[StreamEntry]:
        reply = self.client.xreadgroup(self.group, consumer, {self.key: start}, count=count,
                                       block=block_ms)
        entries = []
        for _, messages in reply or []:
            for entry_id, fields in messages:
                if fields:  # an entry trimmed while pending comes back without fields
                    entries.append(_decode(entry_id, fields))
                else:
                    logger.error("pending entry %s of %s was trimmed before being processed",
                                 _text(entry_id), self.key)
                    self.ack([_text(entry_id)])
        return entries


def open_event_stream(settings: Settings | None = None, timeout: float = 5.0,
                      ) -> EventStream | None:
    """The stream ``RECSYS_EVENT_STREAM`` selects: None for ``local`` (no stream).

    ``timeout`` is the socket timeout of the stream's connection, seconds (readers add the
    time they block).
    """
    settings = settings or get_settings()
    if settings.event_stream == "local":
        return None
    if settings.event_stream == "kafka":
        raise NotImplementedError(
            "RECSYS_EVENT_STREAM=kafka: no Kafka implementation ships (no broker can run in "
            "the tests); implement EventStream with confluent-kafka (README, production profile)")
    url = settings.event_stream_url or resolve_redis(settings).url
    client = connect(url, timeout)
    return RedisEventStream(client, settings.event_stream_key, settings.event_stream_group,
                            settings.event_stream_maxlen)


def _decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> StreamEntry:
    if IMPRESSION_FIELD in fields:
        payload = fields[IMPRESSION_FIELD]
        try:
            return StreamEntry(_text(entry_id), None, payload,
                               impression=impression_from_json(payload),
                               field=IMPRESSION_FIELD)
        except ValueError as exc:
            return StreamEntry(_text(entry_id), None, payload, error=str(exc)[:2000],
                               field=IMPRESSION_FIELD)
    payload = fields.get(FIELD, b"")
    try:
        return StreamEntry(_text(entry_id), Event.model_validate_json(payload), payload)
    except ValidationError as exc:
        return StreamEntry(_text(entry_id), None, payload, error=str(exc)[:2000])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

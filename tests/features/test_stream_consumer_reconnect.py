"""The stream consumer takes new clients after failed rounds in a row (a cluster client can
keep a dead primary in its slot map after a failover)."""

import threading

import redis

from recsys.features.stream_consumer import StreamConsumer


class DeadStream:
    """A stream whose every call fails as a refused connection does."""

    def __init__(self) -> None:
        self.calls = 0

    def ensure_group(self) -> None:
        pass

    def pending(self, consumer: str, count: int) -> list:
        self.calls += 1
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


class LiveStream(DeadStream):
    """A stream that answers, with nothing in it; stops the consumer at its first read."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop

    def pending(self, consumer: str, count: int) -> list:
        self.calls += 1
        self.stop.set()
        return []

    def claim(self, consumer: str, min_idle_ms: int, count: int) -> list:
        return []

    def forget_idle_consumers(self, min_idle_ms: int) -> list:
        return []

    def read(self, consumer: str, count: int, block_ms: int) -> list:
        return []


def test_stream_consumer_reconnects_after_failed_rounds_in_a_row() -> None:
    stop, dead = threading.Event(), DeadStream()
    live = LiveStream(stop)
    reconnects = []

    def reconnect() -> tuple:
        reconnects.append(dead.calls)
        return live, object()

    consumer = StreamConsumer(dead, None, None, object(), "c")  # type: ignore[arg-type]
    consumer.run(stop, retry_seconds=0, reconnect=reconnect, reconnect_after=3)
    assert reconnects == [3]  # after the third failed round, not before
    assert consumer.stream is live and live.calls == 1


def test_stream_consumer_without_reconnect_keeps_retrying_its_stream() -> None:
    stop, dead = threading.Event(), DeadStream()
    consumer = StreamConsumer(dead, None, None, object(), "c")  # type: ignore[arg-type]
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    consumer.run(stop, retry_seconds=0.01)
    assert dead.calls > 3 and consumer.stream is dead

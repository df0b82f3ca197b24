"""The per-user response cache against a real Redis, and its behaviour without one."""

import uuid

from serving.breaker import Breaker
from serving.cache import ResponseCache
from tests.conftest import free_port


def test_hit_after_put_and_miss_after_the_users_event(redis_url: str) -> None:
    cache = ResponseCache(redis_url, ttl=30, breaker=Breaker())
    user = f"cache-{uuid.uuid4().hex}"
    body, gen = cache.get(user, "v1")
    assert body is None
    cache.put(user, "v1", gen, b'{"items":[]}')
    assert cache.get(user, "v1")[0] == b'{"items":[]}'
    assert cache.get(user, "v2")[0] is None
    assert cache.invalidate([user])
    assert cache.get(user, "v1")[0] is None


def test_a_response_computed_across_an_event_is_not_served(redis_url: str) -> None:
    cache = ResponseCache(redis_url, ttl=30, breaker=Breaker())
    user = f"cache-{uuid.uuid4().hex}"
    _, gen = cache.get(user, "v1")  # a request starts...
    cache.invalidate([user])  # ...an event arrives while it computes...
    cache.put(user, "v1", gen, b"stale")  # ...and it stores what it computed
    assert cache.get(user, "v1")[0] is None


def test_unreachable_redis_is_a_fast_miss_and_opens_the_breaker() -> None:
    breaker = Breaker(retry_seconds=60)
    cache = ResponseCache(f"redis://127.0.0.1:{free_port()}/0", ttl=30, breaker=breaker)
    assert cache.get("u1", "v1") == (None, b"")
    assert breaker.is_open and not breaker.allow()
    cache.put("u1", "v1", b"0", b"x")  # skipped, no error
    assert not cache.ping()


def test_breaker_lets_one_probe_through_after_the_interval() -> None:
    breaker = Breaker(retry_seconds=0.0)
    breaker.failed()
    assert breaker.allow()
    breaker.succeeded()
    assert not breaker.is_open


def test_write_behind_puts_land_after_flush_in_one_batch(redis_url: str) -> None:
    cache = ResponseCache(redis_url, ttl=30, breaker=Breaker(), write_behind=True)
    users = [f"cache-{uuid.uuid4().hex}" for _ in range(300)]
    gens = [cache.get(user, "v1")[1] for user in users]
    for user, gen in zip(users, gens, strict=True):
        cache.put(user, "v1", gen, user.encode())
    assert cache.flush(timeout=5)
    assert [cache.get(user, "v1")[0] for user in users] == [u.encode() for u in users]


def test_write_behind_value_landing_after_an_event_is_not_served(redis_url: str) -> None:
    cache = ResponseCache(redis_url, ttl=30, breaker=Breaker(), write_behind=True)
    user = f"cache-{uuid.uuid4().hex}"
    _, gen = cache.get(user, "v1")
    assert cache.invalidate([user])
    cache.put(user, "v1", gen, b"stale")
    assert cache.flush(timeout=5)
    assert cache.get(user, "v1")[0] is None


def test_lookup_along_gives_the_body_on_a_hit_and_the_other_hash_on_a_miss(
    redis_url: str,
) -> None:
    import redis

    cache = ResponseCache(redis_url, ttl=30, breaker=Breaker())
    user = f"cache-{uuid.uuid4().hex}"
    other = f"features-{user}".encode()
    redis.Redis.from_url(redis_url).hset(other, mapping={b"f1": b"a|b", b"f2": b"2"})
    read = (other, [b"f1", b"missing", b"f2"])
    body, gen, values = cache.get_along(user, "v1", read)
    assert (body, gen, values) == (None, b"0", [b"a|b", None, b"2"])
    cache.put(user, "v1", gen, b'{"items":["x|y"]}')  # a body may hold the separator
    assert cache.get_along(user, "v1", read) == (b'{"items":["x|y"]}', b"0", None)
    assert cache.get_along(user, "v2", read)[2] == [b"a|b", None, b"2"]
    assert cache.invalidate([user])  # the user's event: the stored body is stale now
    assert cache.get_along(user, "v1", read) == (None, b"1", [b"a|b", None, b"2"])
    assert cache.get_along(user, "v1", None) == (None, b"1", None)
    off = ResponseCache(redis_url, ttl=0, breaker=Breaker())  # cache disabled: no lookup
    assert off.get_along(user, "v1", read) == (None, b"", None)


def test_lookup_along_without_redis_is_a_miss_without_values() -> None:
    cache = ResponseCache(f"redis://127.0.0.1:{free_port()}/0", ttl=30, breaker=Breaker(60))
    assert cache.get_along("u1", "v1", (b"k", [b"f"])) == (None, b"", None)
    assert cache.breaker.is_open


def test_lingering_writer_gathers_the_window_into_one_batch(redis_url: str) -> None:
    cache = ResponseCache(redis_url, ttl=30, breaker=Breaker(), write_behind=True, linger=0.2)
    writes: list[int] = []
    write = cache._write
    cache._write = lambda puts: (writes.append(len(puts)), write(puts))  # type: ignore[method-assign]
    users = [f"cache-{uuid.uuid4().hex}" for _ in range(5)]
    for user in users:
        cache.put(user, "v1", b"0", user.encode())
    assert cache.flush(timeout=5)
    assert writes == [5]  # one round trip for the five puts queued within the window
    assert [cache.get(user, "v1")[0] for user in users] == [u.encode() for u in users]


def test_a_failed_write_does_not_send_readers_to_the_fallback(redis_url: str) -> None:
    reads, writes = Breaker(retry_seconds=60), Breaker(retry_seconds=60)
    cache = ResponseCache(redis_url, ttl=30, breaker=reads, write_breaker=writes)
    user = f"cache-{uuid.uuid4().hex}"
    _, gen = cache.get(user, "v1")
    cache.put(user, "v1", gen, b"ok")
    writes.failed()  # e.g. a write refused by a full Redis
    cache.put(user, "v1", gen, b"new")  # skipped while the write breaker is open
    assert not reads.is_open
    assert cache.get(user, "v1")[0] == b"ok"


def test_the_write_behind_queue_is_bounded_and_drops_the_oldest(redis_url: str) -> None:
    from serving.metrics import CACHE_WRITES_DROPPED

    dead = f"redis://127.0.0.1:{free_port()}/0"
    cache = ResponseCache(dead, ttl=30, breaker=Breaker(), write_behind=True, max_pending=5,
                          linger=0.5)  # the writer sleeps: the queue fills meanwhile
    before = CACHE_WRITES_DROPPED._value.get()
    for i in range(12):
        cache.put(f"u{i}", "v1", b"1", b"x")
    assert CACHE_WRITES_DROPPED._value.get() - before >= 6
    assert len(cache._pending) <= 5


def test_lookup_checks_the_rate_limits_first_in_the_same_script(redis_url: str) -> None:
    import redis

    from serving.rate_limits import RateLimiter

    limiter, cache = RateLimiter(redis_url), ResponseCache(redis_url, ttl=30, breaker=Breaker())
    user, key = f"cache-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}"
    other = f"features-{user}".encode()
    redis.Redis.from_url(redis_url).hset(other, mapping={b"f1": b"a"})
    read = (other, [b"f1", b"f2"])
    found = [cache.lookup(user, "v1", read, limiter.fold("100/minute", key, "3/minute", [user]))
             for _ in range(4)]
    assert [f.verdict.allowed for f in found] == [True, True, True, False]
    assert found[0][:3] == (None, b"0", [b"a", None]) and found[0].verdict.limit == 3
    refused = found[3]
    assert refused[:3] == (None, b"", None)  # a refused request reads nothing
    assert refused.verdict.remaining == 0 and 1 <= refused.verdict.reset_seconds <= 60
    # the same window as the limiter's own script: the user is still over the limit there
    assert not limiter.admit("100/minute", f"{key}-2", "3/minute", [user]).allowed
    cache.put(user, "v1", b"0", b'{"items":[]}')
    hit = cache.lookup(user, "v1", read, limiter.fold("100/minute", key, "9/minute", [user]))
    assert hit[:3] == (b'{"items":[]}', b"0", None) and hit.verdict.allowed
    assert cache.lookup(user, "v1", read).verdict is None  # no limits asked
    off = ResponseCache(redis_url, ttl=0, breaker=Breaker())  # the cache off: features only
    assert off.lookup(user, "v1", read)[:3] == (None, b"", [b"a", None])


def test_lookup_without_redis_limits_in_process() -> None:
    from serving.rate_limits import RateLimiter

    url = f"redis://127.0.0.1:{free_port()}/0"
    cache, limiter = ResponseCache(url, ttl=30, breaker=Breaker(60)), RateLimiter(url)
    verdicts = []
    for _ in range(3):
        fold = limiter.fold("100/minute", "k", "2/minute", ["u1"])
        limits = fold if fold is not None else None
        found = cache.lookup("u1", "v1", (b"k", [b"f"]), limits)
        verdict = found.verdict if limits is not None else limiter.admit(
            "100/minute", "k", "2/minute", ["u1"])
        verdicts.append(verdict.allowed)
    assert verdicts == [True, True, False]
    assert cache.breaker.is_open

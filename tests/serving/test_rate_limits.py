"""The rate limiter: both limits of a request in one Redis script, the same verdicts as the
``limits`` strategies it replaces on one server and keeps in process."""

import time

import redis

from serving.rate_limits import PREFIX, RateLimiter
from tests.conftest import free_port


def sequence(limiter: RateLimiter, key_limit: str, user_limit: str, users: list[str],
             n: int) -> list[tuple[bool, int, int]]:
    subject = f"key-{time.time_ns()}"
    verdicts = [limiter.admit(key_limit, subject, user_limit, users) for _ in range(n)]
    return [(v.allowed, v.limit, v.remaining) for v in verdicts]


def test_the_key_limit_refuses_before_users_are_counted(redis_url) -> None:
    limiter = RateLimiter(redis_url)
    user = f"u-{time.time_ns()}"
    got = sequence(limiter, "3/minute", "100/minute", [user], 5)
    assert [allowed for allowed, _, _ in got] == [True] * 3 + [False] * 2
    assert got[0][1] == 100  # admitted: the user's limit
    assert got[3][1:] == (3, 0)  # refused: the key's
    assert redis.Redis.from_url(redis_url).llen(f"{PREFIX}user:{user}") == 3


def test_each_user_of_a_batch_has_an_exact_window(redis_url) -> None:
    limiter = RateLimiter(redis_url)
    users = [f"a-{time.time_ns()}", f"b-{time.time_ns()}"]
    got = sequence(limiter, "100/minute", "2/minute", users, 3)
    assert [allowed for allowed, _, _ in got] == [True, True, False]
    assert got[0][1] == 100  # several users: the key's limit is reported
    refused = limiter.admit("100/minute", "other-key", "2/minute", users[1:])
    assert not refused.allowed and refused.remaining == 0 and 1 <= refused.reset_seconds <= 60


def test_the_script_gives_the_verdicts_of_the_in_process_limits(redis_url) -> None:
    down = RateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    for key_limit, user_limit in (("4/minute", "10/minute"), ("10/minute", "4/minute")):
        user = f"same-{time.time_ns()}"
        shared = sequence(RateLimiter(redis_url), key_limit, user_limit, [user], 6)
        local = sequence(down, key_limit, user_limit, [user], 6)
        assert [v[:2] for v in shared] == [v[:2] for v in local]

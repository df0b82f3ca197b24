"""The platform's Redis: URL conversion, and the embedded Valkey server's life cycle."""

import pytest
import redis

from recsys.platform.redis_server import (
    ping,
    resolve_redis,
    stop_embedded,
    to_feast_connection_string,
)
from recsys.platform.settings import Settings
from tests.conftest import free_port


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://localhost:6379/0", "localhost:6379"),
    ("redis://10.0.0.5:6380/3", "10.0.0.5:6380,db=3"),
    ("redis://:s3cret@cache:6379/1", "cache:6379,db=1,password=s3cret"),
    ("rediss://app:pw@cache:6380", "cache:6380,password=pw,username=app,ssl=true"),
    ("redis+cluster://10.0.0.1:7000,10.0.0.2:7001", "10.0.0.1:7000,10.0.0.2:7001"),
    ("redis+cluster://:pw@n1:7000,n2:7000", "n1:7000,n2:7000,password=pw"),
])
def test_feast_connection_string(url: str, expected: str) -> None:
    assert to_feast_connection_string(url) == expected


def test_rejects_non_redis_urls() -> None:
    with pytest.raises(ValueError, match="redis://"):
        to_feast_connection_string("http://localhost:6379")


def test_cluster_url_selects_feasts_cluster_type() -> None:
    target = resolve_redis(Settings(redis_url="redis+cluster://n1:7000,n2:7001"), start=False)
    assert target.cluster and target.feast_redis_type == "redis_cluster"
    assert resolve_redis(Settings(redis_url="redis://n1:7000/0"), start=False
                         ).feast_redis_type == "redis"


def test_redis_url_wins_over_the_embedded_server(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url="redis://example:6379/2")
    target = resolve_redis(settings, start=False)
    assert (target.url, target.embedded) == ("redis://example:6379/2", False)
    assert not (tmp_path / "valkey").exists()


def test_embedded_server_starts_once_keeps_data_and_stops(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, embedded_redis_port=free_port(), redis_url=None)
    first = resolve_redis(settings)
    assert first.embedded and ping(first.url)
    redis.Redis.from_url(first.url).set("k", "v")
    second = resolve_redis(settings)  # already running: the same server, same data
    assert redis.Redis.from_url(second.url).get("k") == b"v"
    assert stop_embedded(settings)
    assert not ping(first.url)
    assert stop_embedded(settings) is False

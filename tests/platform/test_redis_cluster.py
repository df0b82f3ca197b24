"""A real local Valkey cluster: formed from the embedded binary, slot-colocated keys, failover."""

import time

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from recsys.platform.redis_cluster import LocalCluster, colocated_key, hash_tag, same_slot
from recsys.platform.redis_server import REDIS_ERRORS, connect, ping


@pytest.mark.parametrize(("key", "tag"), [
    (b"plain", b"plain"),
    (b"recs:{u1}:x", b"u1"),
    (b"a{}b{c}", b"a{}b{c}"),  # an empty first tag: the whole key is hashed
    (b"a{b{c}d", b"b{c"),
    (b"open{only", b"open{only"),
])
def test_hash_tag_follows_the_redis_rule(key: bytes, tag: bytes) -> None:
    assert hash_tag(key) == tag


@pytest.mark.parametrize("anchor", [
    b"\x01\x00\x00\x00\x02user_id\x02\x00\x00\x00u7recsys", b"x{y}z", b"open{only",
])
def test_colocated_key_shares_the_anchors_slot(anchor: bytes) -> None:
    key = colocated_key(b"recsys:recs:", anchor, b"u7")
    assert key is not None and key.startswith(b"recsys:recs:{")
    assert key_slot(key) == key_slot(anchor) and same_slot(key, anchor)


@pytest.mark.parametrize("anchor", [b"a}b", b"{}pair"])
def test_no_colocated_key_when_the_hashed_part_holds_a_closing_brace(anchor: bytes) -> None:
    assert colocated_key(b"p:", anchor) is None


@pytest.mark.integration
def test_cluster_of_three_primaries_serves_every_slot(valkey_cluster: LocalCluster) -> None:
    client = connect(valkey_cluster.url, timeout=1)
    assert isinstance(client, RedisCluster) and ping(valkey_cluster.url)
    assert len(client.get_primaries()) == 3 and len(client.get_replicas()) == 3
    keys = [f"k{i}" for i in range(30)]
    for key in keys:
        client.set(key, key)
    assert client.mget_nonatomic(keys) == [k.encode() for k in keys]
    assert len({valkey_cluster.primary_of(k) for k in keys}) == 3  # spread over all three
    # one script over a colocated pair runs; a cross-slot pair is refused
    anchor = b"feast-row-of-u1"
    client.hset(anchor, "f", "v")
    script = client.register_script("return redis.call('HGET', KEYS[2], 'f')")
    assert script(keys=[colocated_key(b"c:", anchor), anchor]) == b"v"
    with pytest.raises(REDIS_ERRORS):
        script(keys=[b"c:elsewhere", anchor])


@pytest.mark.integration
def test_cluster_replica_takes_over_a_killed_primary(valkey_cluster: LocalCluster) -> None:
    client = connect(valkey_cluster.url, timeout=0.5)
    client.set("failover-key", "before")
    primary = valkey_cluster.primary_of("failover-key")
    valkey_cluster.kill(primary)
    killed_at = time.monotonic()
    try:
        # writes fail until the replica is promoted, then land on it: each attempt in a new
        # transaction pipeline, as the event stream appends a batch (redis-py refreshes the
        # slot map only after reinitialize_steps errors, counted per pipeline)
        while True:
            try:
                with client.pipeline(transaction=True) as pipe:
                    pipe.set("failover-key", "after")
                    pipe.execute()
                break
            except redis.RedisError:
                assert time.monotonic() - killed_at < 30, "no replica took over"
                time.sleep(0.05)
        print(f"failover window {time.monotonic() - killed_at:.2f} s")
        assert valkey_cluster.primary_of("failover-key") != primary
        assert client.get("failover-key") == b"after"
    finally:
        valkey_cluster.restart(primary)  # back as a replica of the node that took over
        deadline = time.monotonic() + 30
        while not valkey_cluster.healthy():
            assert time.monotonic() < deadline, "the killed node did not rejoin"
            time.sleep(0.1)
    assert valkey_cluster.role(primary) == "slave"

"""Fail-fast settings for the Redis client inside Feast's online store.

redis-py retries a refused connection three times with exponential backoff by default, so
with Redis down one Feast read takes 6-10 s before it raises; the service would time out
instead of falling back. The service therefore bounds its Feast client: no retries, short
socket timeouts (the breaker in :mod:`serving.breaker` spaces out the probes instead).
"""

from __future__ import annotations

from feast import FeatureStore
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry


def fail_fast(store: FeatureStore, timeout: float) -> None:
    """Make ``store``'s Redis client raise at once on a refused or silent server.

    Reaches into Feast's provider for the client it creates lazily (Feast's connection
    string has no retry option); the client then keeps these settings for its lifetime.
    """
    online_store = store._get_provider().online_store
    client = online_store._get_client(store.config.online_store)
    client.set_retry(Retry(NoBackoff(), 0))
    bounds = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if not isinstance(client, RedisCluster):
        client.connection_pool.connection_kwargs.update(bounds)
        return
    # A cluster client keeps one pool per node, and makes pools for nodes it meets later
    # (a promoted replica) from its own keywords.
    client.nodes_manager.connection_kwargs.update(bounds)
    for node in client.get_nodes():
        if node.redis_connection is not None:
            node.redis_connection.connection_pool.connection_kwargs.update(bounds)

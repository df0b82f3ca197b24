"""Feast online store on the platform's Redis (embedded Valkey unless ``REDIS_URL`` is set).

``feature_store.yaml`` names this class, so ``feast apply`` / ``feast materialize-incremental``
run from ``feature_repo/`` find the same Redis as the Dagster assets and the service, starting
the embedded server on first use. All reads and writes are Feast's own Redis store; a
``redis+cluster://`` ``REDIS_URL`` selects its ``redis_type: redis_cluster``.
"""

from __future__ import annotations

from typing import Literal

from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig

from recsys.platform.redis_server import resolve_redis


class PlatformRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Redis store config whose connection string defaults to the platform's Redis."""

    type: Literal["recsys.platform.feast_redis.PlatformRedisOnlineStore"] = (  # type: ignore[assignment]
        "recsys.platform.feast_redis.PlatformRedisOnlineStore"
    )
    connection_string: str = ""


class PlatformRedisOnlineStore(RedisOnlineStore):
    """Feast's RedisOnlineStore, resolving an empty connection string at first connection."""

    @staticmethod
    def _resolved(config: PlatformRedisOnlineStoreConfig) -> RedisOnlineStoreConfig:
        if config.connection_string:
            return config
        target = resolve_redis()
        return config.model_copy(update={"connection_string": target.feast_connection_string,
                                         "redis_type": target.feast_redis_type})

    def _get_client(self, online_store_config):  # type: ignore[override]
        return super()._get_client(self._resolved(online_store_config))

    async def _get_client_async(self, online_store_config):  # type: ignore[override]
        return await super()._get_client_async(self._resolved(online_store_config))

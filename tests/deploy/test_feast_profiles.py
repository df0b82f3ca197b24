"""The Feast configurations for scale (deploy/feast/*/feature_store.yaml) load as Feast
RepoConfigs without connecting to anything: Redis Cluster online, the SQL registry, and a
PostgreSQL or Spark offline store (the Spark one fully only where pyspark is installed)."""

import importlib.util
import os
from pathlib import Path

import pytest
import yaml
from feast.infra.online_stores.redis import RedisOnlineStoreConfig, RedisType
from feast.repo_config import RepoConfig, load_repo_config

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "deploy" / "feast"
ENV = {
    "FEAST_REDIS_CLUSTER": "redis-0:6379,redis-1:6379,password=secret",
    "RECSYS_FEAST_REGISTRY_URL": "postgresql+psycopg2://feast:secret@postgres/feast",
    "FEAST_OFFLINE_PG_HOST": "postgres", "FEAST_OFFLINE_PG_USER": "feast",
    "FEAST_OFFLINE_PG_PASSWORD": "secret", "SPARK_MASTER_URL": "local[2]",
}


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> RepoConfig:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return load_repo_config(ROOT / "feature_repo", PROFILES / name / "feature_store.yaml")


def load_without_spark(name: str, monkeypatch: pytest.MonkeyPatch) -> RepoConfig:
    """The profile with its Spark parts left out when pyspark is missing (Feast imports the
    Spark store's module to validate them): the rest of the file is still checked."""
    if name != "spark" or importlib.util.find_spec("pyspark"):
        return load(name, monkeypatch)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    path = PROFILES / name / "feature_store.yaml"
    raw = yaml.safe_load(os.path.expandvars(path.read_text()))
    assert raw.pop("offline_store")["type"] == "spark"
    assert raw.pop("batch_engine")["type"] == "spark.engine"
    return RepoConfig(**raw)


@pytest.mark.parametrize("name", ["postgres", "spark"])
def test_feast_profile_is_redis_cluster_online_with_a_sql_registry(name, monkeypatch) -> None:
    config = load_without_spark(name, monkeypatch)
    assert config.project == "recsys"
    online = config.online_store
    assert isinstance(online, RedisOnlineStoreConfig)
    assert online.redis_type == RedisType.redis_cluster
    assert online.connection_string == ENV["FEAST_REDIS_CLUSTER"]  # ${VAR} expanded
    assert config.registry.registry_type == "sql"
    assert config.registry.path == ENV["RECSYS_FEAST_REGISTRY_URL"]


def test_feast_profile_postgres_offline_store_validates(monkeypatch) -> None:
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres import (
        PostgreSQLOfflineStoreConfig,
    )

    offline = load("postgres", monkeypatch).offline_store
    assert isinstance(offline, PostgreSQLOfflineStoreConfig)
    assert (offline.host, offline.user, offline.database) == ("postgres", "feast", "recsys")


def test_feast_profile_spark_offline_store_validates(monkeypatch) -> None:
    pytest.importorskip("pyspark", reason="pyspark (feast[spark]) is not in uv.lock: the Spark "
                        "offline store's own schema is checked only where it is installed")
    offline = load("spark", monkeypatch).offline_store
    assert offline.type == "spark"
    assert offline.spark_conf["spark.master"] == "local[2]"


def test_feast_profile_rejects_an_unknown_redis_type(monkeypatch, tmp_path) -> None:
    text = (PROFILES / "postgres" / "feature_store.yaml").read_text()
    broken = tmp_path / "feature_store.yaml"
    broken.write_text(text.replace("redis_type: redis_cluster", "redis_type: redis_clustr"))
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(Exception, match="redis_type|redis_clustr"):
        load_repo_config(ROOT / "feature_repo", broken).online_store  # noqa: B018

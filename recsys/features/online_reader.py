"""One entity's online features in one Redis command, for the request path.

``FeatureStore.get_online_features`` is general: it resolves the references, groups them
by view, builds entity-key protos, sends one HMGET per view in a pipeline, converts the
reply into a response proto and that into a dict. For one user on every request that is
0.6-0.7 ms, the largest stage of an uncached recommendation (cProfile: the Redis call is a
third of it, the rest is Python around it).

:class:`EntityFeatureReader` does the same read with the work that does not depend on the
entity done once: the references of the FeatureServices, their hash fields and the views'
versioned names are resolved at construction; a read is one entity-key serialization, one
HMGET of every field of every view (Feast's Redis layout keeps all views of an entity in
one hash), protobuf parsing and Feast's own value conversion. Keys, fields and values are
made by Feast's Redis online store itself, so the layout cannot drift from what
``feast materialize`` and ``push`` write; ``tests/serving/test_online_features.py`` checks
the result equals ``get_online_features`` value for value. Any other online store is read
through ``get_online_features``. A caller with its own Redis round trip to make can carry
the read in it (:meth:`~EntityFeatureReader.hash_read`, then
:meth:`~EntityFeatureReader.decode`): the service looks the response cache up that way.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from feast import FeatureStore
from feast.infra.online_stores.redis import RedisOnlineStore, _versioned_fv_name
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType
from redis.cluster import RedisCluster

from recsys.features.reads import online_entity_features

logger = logging.getLogger(__name__)


class EntityFeatureReader:
    """Reads the features ``refs`` (``view:feature``) of one entity of ``join_key``.

    :meth:`read` returns ``{view__feature: value}`` with None for a missing value, as
    ``get_online_features(..., full_feature_names=True).to_dict()`` gives for one row.
    """

    def __init__(self, store: FeatureStore, refs: list[str], join_key: str):
        self.store, self.refs, self.join_key = store, list(refs), join_key
        provider = store._get_provider()
        online_store = getattr(provider, "online_store", None)
        self._redis: RedisOnlineStore | None = None
        if isinstance(online_store, RedisOnlineStore) and not _uses_glide(store):
            self._redis = online_store
            self._plan(store)
        else:
            logger.info("online store %s: reading through get_online_features",
                        type(online_store).__name__)

    def _plan(self, store: FeatureStore) -> None:
        """Resolve views, value types, hash fields and output names once."""
        assert self._redis is not None
        config = store.config
        by_view: dict[str, list[str]] = {}
        for ref in self.refs:
            view, feature = ref.split(":", 1)
            by_view.setdefault(view, []).append(feature)
        self._fields: list[bytes | str] = []
        self._names: list[str | None] = []  # output name per field; None for timestamps
        self._types: list[Any] = []
        entity_type = None
        for view_name, features in by_view.items():
            view = store.get_feature_view(view_name)
            dtypes = {f.name: f.dtype.to_value_type() for f in view.features}
            fv_name = _versioned_fv_name(view, config)
            names, fields = self._redis._generate_hset_keys_for_features(
                view, list(features), fv_name_override=fv_name)
            for name, field in zip(names, fields, strict=True):
                is_ts = name.startswith("_ts:")
                self._fields.append(field)
                self._names.append(None if is_ts else f"{view_name}__{name}")
                self._types.append(None if is_ts else dtypes.get(name))
            for column in view.entity_columns:
                if column.name == self.join_key:
                    entity_type = column.dtype.to_value_type()
        if entity_type is None:
            raise ValueError(f"no view of {self.refs} is keyed by {self.join_key!r}")
        # the fields whose values python_value may convert by its shortcut (not UUIDs)
        self._plain = [kind not in _UUIDS for kind in self._types]
        self._entity_type = entity_type
        self._client = self._redis._get_client(config.online_store)

    def row_key(self, entity: object) -> bytes | None:
        """The Redis key of ``entity``'s online row (None when not read through Redis)."""
        return self._redis_key(entity) if self._redis is not None else None

    def _redis_key(self, entity: object) -> bytes:
        assert self._redis is not None
        if self._entity_type == ValueType.STRING:  # the usual id: 5 us less than the general way
            value = ValueProto(string_val=str(entity))
        else:
            value = python_values_to_proto_values([entity], self._entity_type)[0]
        key = EntityKeyProto(join_keys=[self.join_key], entity_values=[value])
        return self._redis._generate_redis_keys_for_entities(self.store.config, [key])[0]

    def read(self, entity: object) -> dict[str, object]:
        """Every feature of ``entity``; raises what the online store raises."""
        command = self.hash_read(entity)
        if command is None:
            data = online_entity_features(self.store, self.refs, self.join_key, [entity])
            return {name: values[0] for name, values in data.items() if name != self.join_key}
        return self.decode(self._client.hmget(*command))

    def hash_read(self, entity: object) -> tuple[bytes, list[bytes | str]] | None:
        """The Redis hash key and fields :meth:`read` gets with one HMGET (None when the
        online store is not read that way), for a caller that sends it in its own
        pipeline; :meth:`decode` turns the reply into features."""
        if self._redis is None:
            return None
        return self._redis_key(entity), self._fields

    @property
    def client(self) -> object:
        """The online store's Redis client (None when the store is not read through Redis)."""
        return self._client if self._redis is not None else None

    def shares_server(self, client: object) -> bool:
        """True when ``client`` talks to the online store's Redis (host, port, database),
        or to the same Redis Cluster (a startup node in common): a script may then read
        the online row beside keys of ``client`` in the row's slot."""
        if self._redis is None:
            return False
        if isinstance(client, RedisCluster) and isinstance(self._client, RedisCluster):
            return bool(_startup_nodes(client) & _startup_nodes(self._client))
        if not isinstance(client, redis.Redis) or not isinstance(self._client, redis.Redis):
            return False
        fields = ("host", "port", "db", "path")
        mine = self._client.connection_pool.connection_kwargs
        theirs = client.connection_pool.connection_kwargs
        return all(str(mine.get(f)) == str(theirs.get(f)) for f in fields)  # Feast: port "6379"

    def decode(self, values: list[bytes | None]) -> dict[str, object]:
        """The features in an HMGET reply to :meth:`hash_read`'s command."""
        out: dict[str, object] = {}
        # one message parsed into again and again: python_value copies what it returns
        proto = ValueProto()
        parse, which_of = proto.ParseFromString, proto.WhichOneof
        for name, kind, plain, raw in zip(self._names, self._types, self._plain, values,
                                          strict=True):
            if name is None:
                continue
            if raw is None:
                out[name] = None
                continue
            parse(raw)
            if plain:  # python_value's shortcut, inlined: one call less per feature
                which = which_of("val")
                if which in _PLAIN:
                    out[name] = getattr(proto, which)
                    continue
                if which in _PLAIN_LISTS:
                    out[name] = list(getattr(proto, which).val)
                    continue
            out[name] = python_value(proto, kind)
        return out


# Feast's conversion of these oneof fields is the value itself, or the list of its values;
# done here directly it costs a third (the rest, and UUIDs stored as strings, stay Feast's).
_PLAIN = frozenset(("int32_val", "int64_val", "double_val", "float_val", "string_val",
                    "bool_val", "bytes_val"))
_PLAIN_LISTS = frozenset(("int32_list_val", "int64_list_val", "double_list_val",
                          "float_list_val", "string_list_val", "bool_list_val",
                          "bytes_list_val"))
_UUIDS = frozenset((ValueType.UUID, ValueType.TIME_UUID, ValueType.UUID_LIST,
                    ValueType.TIME_UUID_LIST))


def python_value(proto: ValueProto, kind: Any) -> object:
    """``feast_value_type_to_python_type(proto, kind)``, with a shortcut for plain values."""
    which = proto.WhichOneof("val")
    if kind not in _UUIDS:
        if which in _PLAIN:
            return getattr(proto, which)
        if which in _PLAIN_LISTS:
            return list(getattr(proto, which).val)
    own = ValueProto()  # Feast's value may refer into the message, which the caller reuses
    own.CopyFrom(proto)
    return feast_value_type_to_python_type(own, kind)


def _startup_nodes(client: RedisCluster) -> set[str]:
    return set(client.nodes_manager.startup_nodes)


def _uses_glide(store: FeatureStore) -> bool:
    """Feast's Redis store can talk through GLIDE instead of redis-py; keep that on Feast."""
    return str(getattr(store.config.online_store, "client", "redis")).endswith("glide")

"""The request path's one-command feature read gives what Feast's SDK gives."""

import pandas as pd
import pytest

from recsys.features.names import RANKER_SERVICE, USER_CONTEXT_SERVICE
from recsys.features.online_reader import EntityFeatureReader
from recsys.features.reads import entity_feature_refs, online_entity_features
from recsys.features.store import get_feature_store
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration


def test_reader_equals_get_online_features_for_every_user(platform: Platform) -> None:
    settings = platform.settings
    store = get_feature_store(settings)
    refs = entity_feature_refs(store, [RANKER_SERVICE, USER_CONTEXT_SERVICE],
                               "user_id")
    assert {ref.split(":")[0] for ref in refs} >= {"user_history", "user_recent"}
    reader = EntityFeatureReader(store, refs, "user_id")
    assert reader._redis is not None, "the platform's online store is Redis: the fast path"
    valid = pd.read_parquet(settings.warehouse_dir / "validated_events", columns=["user_id"])
    users = sorted(valid["user_id"].astype(str).unique()) + ["never-seen-user"]
    expected = online_entity_features(store, refs, "user_id", users)
    assert expected.pop("user_id") == users
    present = 0
    for i, user in enumerate(users):
        got = reader.read(user)
        assert got == {name: values[i] for name, values in expected.items()}, user
        present += got["user_history__seen_items"] is not None
    assert present == len(users) - 1  # every known user has features; the unknown has none
    assert all(value is None for value in reader.read("never-seen-user").values())

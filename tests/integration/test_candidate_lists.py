"""The champion's candidate lists, written by the pipeline's ``candidate_lists`` asset, come
with each user's online features and equal what the request path would retrieve."""

import numpy as np
import pytest

from recsys.features.names import CANDIDATE_BLOCK, CANDIDATES_MODEL
from recsys.models.candidate_lists import decode_block
from serving.breaker import Breaker
from serving.config import get_serving_settings
from serving.engine import Query
from serving.model_store import ModelHolder
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration


def test_every_known_user_reads_the_champions_list_with_their_features(
        platform: Platform) -> None:
    engine = ModelHolder(platform.settings, get_serving_settings(), Breaker()).engine
    names = engine.retriever.union.names
    users = engine.recommender.candidates.generators[0].interactions.user_ids.tolist()
    assert len(users) > 100
    for user in users:
        features = engine.user_reader.read(user)
        assert features[CANDIDATES_MODEL] == engine.model_version, user
        stored = decode_block(features[CANDIDATE_BLOCK], names)
        online = engine.retriever.retrieve(user)
        np.testing.assert_array_equal(stored.rows, online.rows)
        for column, values in online.columns.items():  # one user's product vs a batch's
            np.testing.assert_allclose(stored.columns[column], values, rtol=1e-5, atol=1e-6,
                                       equal_nan=True, err_msg=f"{user} {column}")
    unknown = engine.user_reader.read("never-seen-user")
    assert unknown[CANDIDATE_BLOCK] is None
    response = engine.recommend(Query(user_id=users[0], n=5))
    assert not response.fallback and len(response.items) == 5

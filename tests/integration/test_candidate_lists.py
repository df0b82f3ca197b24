"""The champion's candidate lists, written by the pipeline's ``candidate_lists`` asset, come
with each user's online features and equal what the request path would retrieve."""

import numpy as np
import pytest

from recsys.features.names import CANDIDATE_BLOCK, CANDIDATES_MODEL, SEEN_ITEMS
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


def test_a_shuffled_query_draws_unseen_items_from_the_whole_catalog(platform: Platform) -> None:
    """The broken-ranking drill's variant ranks at random: its lists come from the whole
    allowed catalog, not from the user's good candidates (which would hide the harm)."""
    engine = ModelHolder(platform.settings, get_serving_settings(), Breaker()).engine
    user = engine.recommender.candidates.generators[0].interactions.user_ids[0]
    seen = set(engine.user_reader.read(user)[SEEN_ITEMS] or [])
    personal = {i.item_id for i in engine.recommend(Query(user_id=user, n=20)).items}
    drawn: list[str] = []
    for _ in range(30):
        response = engine.recommend(Query(user_id=user, n=10, shuffle=True))
        assert not response.fallback and len(response.items) == 10
        assert {item.reason_kind for item in response.items} == {"random"}
        drawn += [item.item_id for item in response.items]
    assert not set(drawn) & seen
    allowed = len(engine.items.in_stock.nonzero()[0]) - len(seen)
    # 300 uniform draws over the allowed catalog cover most of it, far beyond any top list
    assert len(set(drawn)) >= 0.6 * allowed > len(personal)

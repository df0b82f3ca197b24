import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from recsys.events.schema import EVENT_COLUMNS, EVENT_DTYPES, ITEM_DTYPES, USER_DTYPES
from recsys.events.synthetic import CATEGORY_NAMES, DEVICES, World, WorldConfig, generate_world
from recsys.events.validation import validate_events

END = datetime(2024, 6, 1, tzinfo=UTC)
SMALL = WorldConfig(n_users=200, n_items=150, days=20, end=END, seed=7)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(WorldConfig(n_users=600, n_items=300, days=30, end=END))


def test_same_seed_gives_identical_frames_and_other_seed_differs() -> None:
    first, second = generate_world(SMALL), generate_world(SMALL)
    for name in ("events", "items", "users"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    np.testing.assert_array_equal(first.user_taste, second.user_taste)
    other = generate_world(WorldConfig(n_users=200, n_items=150, days=20, end=END, seed=8))
    assert not first.events["item_id"].equals(other.events["item_id"])
    assert first.events["event_id"].iloc[0] == "syn-7-0"


def test_frames_follow_the_schema(world: World) -> None:
    assert world.events.dtypes.astype(str).to_dict() == EVENT_DTYPES
    assert world.items.dtypes.astype(str).to_dict() == ITEM_DTYPES
    assert world.users.dtypes.astype(str).to_dict() == USER_DTYPES
    assert world.events["event_id"].is_unique
    assert set(world.events["user_id"]) <= set(world.users["user_id"])
    assert set(world.events["item_id"]) <= set(world.items["item_id"])
    assert world.events["timestamp"].is_monotonic_increasing
    assert world.events["timestamp"].min() >= pd.Timestamp(world.start)
    assert world.events["timestamp"].max() < pd.Timestamp(END)
    result = validate_events(world.events[EVENT_COLUMNS])
    assert result.quarantined.empty, result.quarantined["reason"].head().tolist()


def test_items_are_plausible(world: World) -> None:
    items = world.items
    assert items["categories"].map(len).between(1, 2).all()
    assert set(items["categories"].explode()) <= set(CATEGORY_NAMES[:12])
    assert items["title"].iloc[3].startswith("Item 3 (")
    assert (items["price"] > 0).all()
    assert 0.01 < (~items["in_stock"]).mean() < 0.12
    # Nobody views an item before it exists.
    views = world.events.merge(items[["item_id", "created_at"]], on="item_id")
    assert (views["timestamp"] >= views["created_at"]).all()


def test_funnel_narrows(world: World) -> None:
    counts = world.events["event_type"].value_counts()
    assert counts["purchase"] < counts["add_to_cart"] < counts["click"] < counts["view"]
    assert counts["rate"] > 0
    purchases = world.events[world.events["event_type"] == "purchase"]
    prices = world.items.set_index("item_id")["price"]
    np.testing.assert_allclose(purchases["value"], prices[purchases["item_id"]].to_numpy())


def test_popularity_and_activity_are_heavy_tailed(world: World) -> None:
    views = world.events[world.events["event_type"] == "view"]
    per_item = views["item_id"].value_counts()
    top_decile = per_item.iloc[: len(world.items) // 10].sum() / per_item.sum()
    assert top_decile > 0.4
    per_user = world.events["user_id"].value_counts()
    assert per_user.max() > 5 * per_user.median()


def test_taste_drives_chosen_categories(world: World) -> None:
    views = world.events[world.events["event_type"] == "view"]
    users = views["user_id"].str[1:].astype(int).to_numpy()
    items = views["item_id"].str[1:].astype(int).to_numpy()
    exposure = np.zeros_like(world.user_taste)
    np.add.at(exposure, users, world.item_categories[items])
    active = exposure.sum(axis=1) >= 20
    correlations = [
        np.corrcoef(world.user_taste[u], exposure[u])[0, 1] for u in np.flatnonzero(active)
    ]
    assert np.mean(correlations) > 0.5


def test_preference_is_the_ground_truth_behind_behaviour(world: World) -> None:
    events = world.events
    views = events[events["event_type"] == "view"]
    clicks = events[events["event_type"] == "click"]
    clicked = set(clicks["user_id"] + "|" + clicks["item_id"])
    pref = world.preference(views["user_id"].to_numpy(), views["item_id"].to_numpy())
    was_clicked = (views["user_id"] + "|" + views["item_id"]).isin(clicked).to_numpy()
    assert pref[was_clicked].mean() > pref[~was_clicked].mean() + 0.1
    rates = events[events["event_type"] == "rate"]
    rate_pref = world.preference(rates["user_id"].to_numpy(), rates["item_id"].to_numpy())
    assert np.corrcoef(rate_pref, rates["value"])[0, 1] > 0.4
    assert set(rates["value"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_preference_broadcasts_and_rejects_unknown_ids(world: World) -> None:
    users = world.users["user_id"].to_numpy()[:5]
    items = world.items["item_id"].to_numpy()
    grid = world.preference(users[:, None], items[None, :])
    assert grid.shape == (5, len(items))
    assert ((grid > 0) & (grid < 1)).all()
    assert grid[2, 7] == world.preference("u2", "i7")
    with pytest.raises(KeyError, match="nobody"):
        world.preference(["nobody"], ["i1"])


def test_sessions_have_devices_and_a_daily_rhythm(world: World) -> None:
    contexts = world.events["context"].map(json.loads)
    devices = contexts.map(lambda c: c["device"]).value_counts()
    assert set(devices.index) == set(DEVICES)
    assert devices.idxmax() == "mobile"
    hours = world.events["timestamp"].dt.hour
    assert hours.between(18, 21).sum() > 3 * hours.between(1, 4).sum()


def test_default_world_and_config_checks() -> None:
    default = generate_world(WorldConfig(end=END))
    assert default.user_taste.shape == (2000, 12) and len(default.items) == 1000
    with pytest.raises(ValueError, match="timezone-aware"):
        WorldConfig(end=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="n_categories"):
        WorldConfig(n_categories=99)


def test_a_world_too_large_for_a_dense_match_samples_the_same_distribution() -> None:
    """Without the users x items matrix (``dense_pairs`` 0) the views follow the same taste
    and popularity: per-item view shares and the views' category shares stay close to the
    dense sampler's, and the ground truth is the same function."""
    config = WorldConfig(n_users=600, n_items=300, days=30, end=END, seed=11)
    dense = generate_world(config)
    sparse = generate_world(WorldConfig(**{**vars(config), "dense_pairs": 0}))
    assert sparse._match is None
    views = [w.events[w.events["event_type"] == "view"] for w in (dense, sparse)]
    shares = [v["item_id"].value_counts(normalize=True) for v in views]
    total_variation = 0.5 * shares[0].sub(shares[1], fill_value=0).abs().sum()
    assert total_variation < 0.15, total_variation
    users = dense.users["user_id"].to_numpy()[:50]
    items = dense.items["item_id"].to_numpy()
    np.testing.assert_allclose(sparse.preference(users[:, None], items[None, :]),
                               dense.preference(users[:, None], items[None, :]), rtol=1e-9)
    # users view what they like: the views' mean true preference beats random pairs'
    liked = sparse.preference(views[1]["user_id"].to_numpy(), views[1]["item_id"].to_numpy())
    assert liked.mean() > sparse.preference(users[:, None], items[None, :]).mean() + 0.02

"""Splits: no leakage, per-user fractions, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.splits import Split, global_time_split, stratified_split, temporal_split

KEY = ["user_id", "item_id", "timestamp"]


@pytest.fixture(scope="module")
def interactions() -> pd.DataFrame:
    """60 users with 1..40 events; tied timestamps, a repeated pair and an exact duplicate."""
    rng = np.random.default_rng(7)
    rows = []
    for user in range(60):
        n = 1 + user % 40
        items = rng.choice(200, n, replace=False)
        days = rng.integers(0, 30, n)  # coarse days: many ties within a user
        rows += [(f"u{user}", f"i{item}", day) for item, day in zip(items, days, strict=True)]
    rows += [("u5", rows[10][1], 40), ("u7", "i3", 5), ("u7", "i3", 5)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    frame["timestamp"] = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(frame["day"], "D")
    frame["weight"] = 1.0
    return frame.drop(columns="day")


def _expected_train_count(n: int, test_fraction: float) -> int:
    return n if n == 1 else int(np.clip(np.floor((1 - test_fraction) * n + 1e-9), 1, n - 1))


def _assert_partition(split: Split, frame: pd.DataFrame) -> None:
    assert len(split.train) + len(split.test) == len(frame)
    both = pd.concat([split.train, split.test]).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(both, frame.sort_values(KEY).reset_index(drop=True))
    assert split.train.merge(split.test, on=KEY).empty, "a (user, item, timestamp) row leaked"


def test_stratified_split_partitions_without_leakage(interactions: pd.DataFrame) -> None:
    split = stratified_split(interactions, test_fraction=0.25, seed=42)
    _assert_partition(split, interactions)
    assert split.train.merge(split.test, on=["user_id", "item_id"]).empty
    pairs = interactions.drop_duplicates(["user_id", "item_id"])
    n_pairs = pairs.groupby("user_id").size()
    n_train = split.train.drop_duplicates(["user_id", "item_id"]).groupby("user_id").size()
    for user, n in n_pairs.items():
        assert n_train[user] == _expected_train_count(n, 0.25)


@pytest.mark.parametrize(("n", "n_train"), [(1, 1), (2, 1), (3, 2), (4, 3), (10, 7), (40, 30)])
def test_per_user_count_rule(n: int, n_train: int) -> None:
    assert _expected_train_count(n, 0.25) == n_train


def test_stratified_split_is_seeded(interactions: pd.DataFrame) -> None:
    first = stratified_split(interactions, seed=3)
    pd.testing.assert_frame_equal(first.train, stratified_split(interactions, seed=3).train)
    assert not first.train.equals(stratified_split(interactions, seed=4).train)


def test_temporal_split_holds_out_each_users_latest(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, test_fraction=0.25)
    _assert_partition(split, interactions)
    last_train = split.train.groupby("user_id")["timestamp"].max()
    first_test = split.test.groupby("user_id")["timestamp"].min()
    assert (last_train[first_test.index] <= first_test).all()
    n_units = interactions.drop_duplicates(KEY).groupby("user_id").size()
    n_train = split.train.drop_duplicates(KEY).groupby("user_id").size()
    for user, n in n_units.items():
        assert n_train[user] == _expected_train_count(n, 0.25)
    duplicate = "user_id == 'u7' and item_id == 'i3'"
    assert {len(split.train.query(duplicate)), len(split.test.query(duplicate))} == {0, 2}


def test_temporal_split_ignores_row_order(interactions: pd.DataFrame) -> None:
    shuffled = interactions.sample(frac=1.0, random_state=1)
    a = temporal_split(interactions).test.sort_values(KEY).reset_index(drop=True)
    b = temporal_split(shuffled).test.sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_global_time_split_with_cutoff(interactions: pd.DataFrame) -> None:
    cutoff = pd.Timestamp("2024-01-20", tz="UTC")
    split = global_time_split(interactions, cutoff=cutoff)
    _assert_partition(split, interactions)
    assert (split.train["timestamp"] < cutoff).all()
    assert (split.test["timestamp"] >= cutoff).all()
    assert split.cutoff == cutoff


def test_global_time_split_from_quantile(interactions: pd.DataFrame) -> None:
    split = global_time_split(interactions, test_fraction=0.2)
    assert split.train["timestamp"].max() < split.cutoff <= split.test["timestamp"].min()
    assert 0.15 < len(split.test) / len(interactions) < 0.3


def test_invalid_inputs_raise(interactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        global_time_split(interactions, cutoff=pd.Timestamp("2024-01-20"))
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(interactions, test_fraction=1.0)
    with pytest.raises(ValueError, match="lack columns"):
        temporal_split(interactions.drop(columns="timestamp"))
    with pytest.raises(TypeError, match="tz-aware"):
        temporal_split(
            interactions.assign(timestamp=interactions["timestamp"].dt.tz_localize(None))
        )

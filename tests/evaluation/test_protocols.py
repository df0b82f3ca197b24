"""Evaluation protocols: what a model sees never holds a test interaction."""

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.protocols import (
    binary_interactions,
    feature_cutoff,
    make_fold,
    relevant_items,
)

T0 = pd.Timestamp("2026-01-05", tz="UTC")


def events(n_users: int = 30, per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    """Ratings of distinct items at increasing times, with one re-rated pair per user."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(50, per_user, replace=False)
        for j, item in enumerate(items):
            rows.append((f"u{u}", f"i{item}", float(rng.integers(1, 6)), j))
        rows.append((f"u{u}", f"i{items[0]}", 5.0, per_user))  # the first item again, last
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "day"])
    frame["event_id"] = [f"e{i}" for i in range(len(frame))]
    frame["event_type"] = "rate"
    frame["timestamp"] = T0 + pd.to_timedelta(frame.pop("day"), unit="D")
    frame["context"] = "{}"
    return frame


def pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["user_id"], frame["item_id"], strict=True))


def test_stratified_fold_keeps_every_pair_on_one_side() -> None:
    data = events()
    fold = make_fold(data, "stratified", seed=3)
    assert pairs(fold.train).isdisjoint(pairs(fold.test))
    assert len(fold.train) + len(fold.test) == len(data)
    for user, items in fold.relevant.items():
        assert {(user, i) for i in items} <= pairs(fold.test)
    # About a quarter of each user's 12 distinct items is held out.
    sizes = fold.test.drop_duplicates(["user_id", "item_id"]).groupby("user_id").size()
    assert sizes.between(3, 4).all()


def test_stratified_folds_differ_by_seed_and_repeat_by_seed() -> None:
    data = events()
    a, b, c = (make_fold(data, "stratified", seed=s) for s in (1, 1, 2))
    assert a.relevant == b.relevant and a.relevant != c.relevant


def test_temporal_fold_holds_out_each_users_latest_events() -> None:
    data = events()
    fold = make_fold(data, "temporal", seed=0)
    last_train = fold.train.groupby("user_id")["timestamp"].max()
    first_test = fold.test.groupby("user_id")["timestamp"].min()
    assert (last_train <= first_test.reindex(last_train.index)).all()
    # The re-rated first item is in test but was seen in training: never relevant.
    for user, items in fold.relevant.items():
        assert not {(user, i) for i in items} & pairs(fold.train)


def test_validation_fold_is_cut_from_training_events_only() -> None:
    data = events()
    for protocol in ("stratified", "temporal"):
        fold = make_fold(data, protocol, seed=5)
        val = fold.validation(seed=6)
        used = set(val.train["event_id"]) | set(val.test["event_id"])
        assert used == set(fold.train["event_id"])
        assert used.isdisjoint(fold.test["event_id"])


def test_relevant_items_skip_unknown_users_and_seen_items() -> None:
    train = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})
    test = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "item_id": ["y", "z", "z", "x"]})
    assert relevant_items(train, test) == {"a": {"z"}, "b": {"z"}}


def test_binary_interactions_and_feature_cutoff() -> None:
    data = events(n_users=2)
    frame = binary_interactions(data)
    assert (frame["weight"] == 1.0).all()
    assert len(frame) == data.drop_duplicates(["user_id", "item_id"]).shape[0]
    last = data["timestamp"].max()
    assert feature_cutoff(data) == last.floor("D") + pd.Timedelta(days=1) > last


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        make_fold(events(), "random", seed=0)

"""Offline feature tables: windows, point-in-time stamps and lists, on hand-made events."""

import numpy as np
import pandas as pd
import pytest

from recsys.features.tables import build_item_table, build_user_tables, category_vocabulary

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def events(rows: list[tuple[str, str, str, int, float | None]]) -> pd.DataFrame:
    """(user, item, type, day offset, value) → an events frame, each at noon of its day."""
    return pd.DataFrame({
        "event_id": [f"e{i}" for i in range(len(rows))],
        "user_id": [r[0] for r in rows],
        "item_id": [r[1] for r in rows],
        "event_type": [r[2] for r in rows],
        "value": [np.nan if r[4] is None else r[4] for r in rows],
        "timestamp": [T0 + pd.Timedelta(days=r[3], hours=12) for r in rows],
        "context": ["{}"] * len(rows),
    })


CATALOG = pd.DataFrame({
    "item_id": ["a", "b", "c"],
    "title": ["A", "B", "C"],
    "categories": [["drama"], ["comedy"], ["comedy", "drama"]],
    "price": [1.0, 2.0, 3.0],
    "in_stock": [True, True, False],
    "created_at": [T0 - pd.Timedelta(days=10)] * 3,
})


@pytest.fixture()
def tables() -> dict[str, pd.DataFrame]:
    ev = events([
        ("u1", "a", "view", 0, None),
        ("u1", "b", "purchase", 0, None),
        ("u1", "c", "rate", 8, 4.0),
        ("u2", "a", "view", 2, None),
        ("u2", "a", "click", 2, None),
    ])
    tables = build_user_tables(ev, CATALOG)
    tables["item_stats"] = build_item_table(ev, CATALOG)
    return tables


def row(frame: pd.DataFrame, key: str, value: str, day: int) -> pd.Series:
    stamp = T0 + pd.Timedelta(days=day + 1)  # a day's row is stamped at its end
    found = frame[(frame[key] == value) & (frame["event_timestamp"] == stamp)]
    assert len(found) == 1, f"no single row for {value} on day {day}"
    return found.iloc[0]


def test_user_windows_count_events_up_to_the_end_of_each_day(tables) -> None:
    activity = tables["user_activity"]
    day0 = row(activity, "user_id", "u1", 0)
    assert (day0["events_7d"], day0["events_30d"], day0["purchases_30d"]) == (2, 2, 1)
    day7 = row(activity, "user_id", "u1", 7)  # day 0 has left the 7-day window
    assert (day7["events_7d"], day7["events_30d"], day7["days_since_last"]) == (0, 2, 7)
    day8 = row(activity, "user_id", "u1", 8)
    assert (day8["events_7d"], day8["events_total"], day8["mean_rating"]) == (1, 3, 4.0)


def test_no_row_is_stamped_before_its_data_exists(tables) -> None:
    first = tables["user_activity"].groupby("user_id")["event_timestamp"].min()
    assert first["u1"] == T0 + pd.Timedelta(days=1)
    assert first["u2"] == T0 + pd.Timedelta(days=3)


def test_category_affinity_is_the_weighted_share_per_category(tables) -> None:
    vocab = category_vocabulary(CATALOG)
    assert vocab == ["comedy", "drama"]
    affinity = row(tables["user_activity"], "user_id", "u1", 0)["category_affinity"]
    # view of a drama item (weight 1) and purchase of a comedy item (weight 5)
    assert np.allclose(affinity, [5 / 6, 1 / 6])


def test_history_lists_are_most_recent_first_and_distinct(tables) -> None:
    history = tables["user_history"]
    assert list(row(history, "user_id", "u1", 8)["seen_items"]) == ["c", "b", "a"]
    assert list(row(history, "user_id", "u2", 2)["seen_items"]) == ["a"]
    assert list(row(tables["user_recent"], "user_id", "u1", 0)["recent_items"]) == ["b", "a"]


def test_item_popularity_counts_user_days_and_keeps_catalog_fields(tables) -> None:
    stats = tables["item_stats"]
    a2 = row(stats, "item_id", "a", 2)
    assert (a2["popularity_7d"], a2["popularity_total"]) == (2, 2)  # u1 day 0, u2 day 2 (once)
    assert a2["trend"] == pytest.approx(3.0)  # (2 + 1) / (0 + 1)
    c8 = row(stats, "item_id", "c", 8)
    assert (c8["in_stock"], c8["mean_rating"], list(c8["category_ids"])) == (0, 4.0, [0, 1])
    assert c8["age_days"] == pytest.approx(19.0)

"""Events files of every shape load with a catalog and a user table covering their events."""

from pathlib import Path

import pandas as pd
import pytest

from recsys.events.catalog import complete_catalog, complete_users
from recsys.events.importers import load_dataset
from recsys.events.sample_files import FileShape, write_events_folder
from recsys.events.schema import ITEM_DTYPES, USER_DTYPES, empty_frame
from recsys.features.tables import build_item_table

SHAPES = [
    FileShape(n_events=1500, years=3, event_types="one"),
    FileShape(n_events=1500, years=3, event_types="many", catalog=True),
    FileShape(n_events=1500, years=3, event_types="one", users=True),
    FileShape(n_events=1500, years=3, event_types="many", catalog=True, users=True),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.event_types}-catalog{s.catalog}"
                         f"-users{s.users}")
def test_every_shape_loads_with_every_item_and_user(tmp_path: Path, shape: FileShape) -> None:
    data = load_dataset(write_events_folder(tmp_path, shape))
    assert len(data.events) > 1400
    assert data.items.dtypes.astype(str).to_dict() == ITEM_DTYPES
    assert data.users.dtypes.astype(str).to_dict() == USER_DTYPES
    assert set(data.events["item_id"]) <= set(data.items["item_id"])
    assert set(data.events["user_id"]) <= set(data.users["user_id"])
    assert data.items["item_id"].is_unique and data.users["user_id"].is_unique
    # Ids that look like numbers stay text everywhere.
    assert all(isinstance(i, str) for i in data.items["item_id"])
    assert data.events["item_id"].str.fullmatch(r"2\d{4}").all()
    types = set(data.events["event_type"])
    assert types == {"rate"} if shape.event_types == "one" else len(types) > 2
    titled = data.items["title"].notna()
    if shape.catalog:  # the catalog's rows, with their categories, are kept as given
        assert titled.sum() == shape.n_items
        assert data.items.loc[titled, "categories"].map(len).min() >= 1
    else:
        assert not titled.any() and data.items["categories"].map(len).max() == 0
    known_age = data.users["age"].notna().sum()
    assert known_age == (shape.n_users if shape.users else 0)


def test_derived_items_exist_from_their_first_event_and_tables_are_not_replaced() -> None:
    stamp = pd.Timestamp("2020-05-01T10:00:00Z")
    events = pd.DataFrame({
        "user_id": ["1", "2", "2"], "item_id": ["007", "7", "007"],
        "timestamp": [stamp, stamp + pd.Timedelta(days=3), stamp - pd.Timedelta(days=1)],
    })
    catalog = pd.DataFrame({"item_id": ["7"], "title": ["Seven"], "categories": [["x"]],
                            "price": [1.0], "in_stock": [False],
                            "created_at": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]")})
    items = complete_catalog(catalog, events).set_index("item_id")
    assert list(items.index) == ["7", "007"]
    assert items.loc["7", "title"] == "Seven" and not items.loc["7", "in_stock"]
    assert items.loc["007", "created_at"] == stamp - pd.Timedelta(days=1)
    assert items.loc["007", "in_stock"] and items.loc["007", "categories"] == []
    users = complete_users(None, events)
    assert users["user_id"].tolist() == ["1", "2"] and users["age"].isna().all()
    assert complete_catalog(empty_frame(ITEM_DTYPES), events.iloc[:0]).empty


def test_item_features_come_from_the_events_without_a_catalog(tmp_path: Path) -> None:
    data = load_dataset(write_events_folder(tmp_path, SHAPES[0]))
    stats = build_item_table(data.events, empty_frame(ITEM_DTYPES))
    assert set(stats["item_id"]) == set(data.events["item_id"])
    assert stats["item_id"].map(type).eq(str).all()
    top = data.events["item_id"].value_counts().index[0]
    last = stats[stats["item_id"] == top].sort_values("event_timestamp").iloc[-1]
    assert last["popularity_total"] > 0 and last["in_stock"] == 1
    # Rows per week and per change, not per day: ~3 years of days for every item would be more.
    days = (data.events["timestamp"].max() - data.events["timestamp"].min()).days
    assert len(stats) < 0.5 * days * stats["item_id"].nunique()

"""Context features: one definition from events (batch) and from a request, equal values."""

import dataclasses
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from recsys.features.context import (
    CONTEXT_DEVICE,
    CONTEXT_HOUR,
    CONTEXT_WEEKDAY,
    DAYPARTS,
    DEVICES,
    context_columns,
    event_devices,
    request_context,
)
from recsys.features.names import DAYPART_SHARES, DEVICE_SHARES
from recsys.features.ranker_inputs import OnlineInputs, feature_matrix
from recsys.features.tables import build_item_table
from tests.item_tables import item_table

SHARES = [*DAYPART_SHARES, *DEVICE_SHARES]


def with_profiles(seed: int = 1):  # noqa: ANN201
    """The test item table with a random context profile per item."""
    items = item_table()
    profile = np.random.default_rng(seed).dirichlet(np.ones(4), (len(items), 2))
    features = np.hstack([items.features, profile.reshape(len(items), 8)]).astype(np.float32)
    return dataclasses.replace(items, feature_names=[*items.feature_names, *SHARES],
                               features=features)


def test_a_requests_context_equals_its_events_in_the_batch_frame() -> None:
    """A list whose context comes from an event (batch) and a request sent at that moment
    from that device get the same context inputs and item shares, column for column."""
    items = with_profiles()
    rows = np.arange(len(items))
    events = pd.DataFrame({
        "timestamp": pd.to_datetime(["2026-11-20T21:40:00Z", "2026-11-21T07:05:00Z",
                                     "2026-11-22T13:00:00Z"], utc=True),
        "context": [json.dumps({"device": "tv", "page": "home"}), '{"device": "Mobile"}', "{}"],
    })
    batch_context = context_columns(events["timestamp"], event_devices(events["context"]))
    columns = {"als_score": np.linspace(1, 0, len(rows))}
    for n, moment in enumerate(events["timestamp"]):
        device = json.loads(events["context"][n]).get("device")
        frame = pd.DataFrame({"user_id": "u1", "item_id": items.ids[rows], **columns,
                              "item_stats__price": items.features[rows, 0],
                              **{name: items.features[rows, 1 + j]
                                 for j, name in enumerate(SHARES)},
                              **{name: values[n] for name, values in batch_context.items()}})
        batch = feature_matrix(frame)
        request = request_context({"device": device} if device else {},
                                  now=moment.to_pydatetime())
        online = OnlineInputs(list(batch.columns), items).matrix(rows, columns, {}, request)
        assert {"daypart_share", "device_share", CONTEXT_HOUR} <= set(batch.columns)
        np.testing.assert_allclose(online, batch.to_numpy(np.float32), equal_nan=True)
    first = feature_matrix(pd.DataFrame({
        "user_id": "u1", "item_id": items.ids[rows], **columns,
        **{name: items.features[rows, 1 + j] for j, name in enumerate(SHARES)},
        **{name: values[0] for name, values in batch_context.items()}}))
    # 21:40 on a Friday, on a tv: the evening share and the tv share of each item
    assert batch_context[CONTEXT_HOUR][0] == 21 and batch_context[CONTEXT_WEEKDAY][0] == 4
    np.testing.assert_allclose(first["daypart_share"], items.features[rows, 1 + 3])
    np.testing.assert_allclose(first["device_share"], items.features[rows, 1 + 4 + 3])
    assert batch_context[CONTEXT_DEVICE][1] == DEVICES.index("mobile")
    assert np.isnan(batch_context[CONTEXT_DEVICE][2])


def test_request_context_reads_timestamp_hour_and_weekday() -> None:
    now = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)  # a Monday
    plain = request_context({}, now)
    assert (plain[CONTEXT_HOUR], plain[CONTEXT_WEEKDAY]) == (10.0, 0.0)
    assert np.isnan(plain[CONTEXT_DEVICE])
    assert np.isnan(request_context({"device": "fridge"}, now)[CONTEXT_DEVICE])
    stamped = request_context({"timestamp": "2026-11-28T23:10:00+02:00", "device": "tablet"}, now)
    assert stamped == {CONTEXT_HOUR: 21.0, CONTEXT_WEEKDAY: 5.0, CONTEXT_DEVICE: 2.0}
    given = request_context({"hour": 19, "weekday": 6, "timestamp": "not a time"}, now)
    assert (given[CONTEXT_HOUR], given[CONTEXT_WEEKDAY]) == (19.0, 6.0)
    assert request_context({"hour": 25, "weekday": True}, now)[CONTEXT_HOUR] == 10.0


def test_item_profiles_come_from_their_events() -> None:
    """i1 is used in the evening on a tv, i2 by day on mobile and desktop; i3 never."""
    stamps = ["2026-11-20T20:00:00Z", "2026-11-20T22:30:00Z", "2026-11-21T19:00:00Z",
              "2026-11-20T09:00:00Z", "2026-11-21T10:00:00Z", "2026-11-21T13:00:00Z"]
    events = pd.DataFrame({
        "user_id": ["u1", "u2", "u3", "u1", "u2", "u3"],
        "item_id": ["i1", "i1", "i1", "i2", "i2", "i2"],
        "event_type": "view", "value": np.nan,
        "timestamp": pd.to_datetime(stamps, utc=True),
        "context": ['{"device":"tv"}'] * 3 + ['{"device":"mobile"}', '{"device":"desktop"}',
                                              "{}"],
    })
    catalog = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "title": None,
                            "categories": [["a"], ["b"], ["a"]], "price": 1.0, "in_stock": True,
                            "created_at": pd.Timestamp("2026-01-01", tz="UTC")})
    table = build_item_table(events, catalog)
    last = table.sort_values("event_timestamp").groupby("item_id").last()
    last = last[[c for c in last if c.startswith("share_")]].astype(float)
    evening = [f"share_{p}" for p in DAYPARTS]
    np.testing.assert_allclose(last.loc["i1", evening], [1 / 7, 1 / 7, 1 / 7, 4 / 7], rtol=1e-6)
    np.testing.assert_allclose(last.loc["i2", evening], [1 / 7, 3 / 7, 2 / 7, 1 / 7], rtol=1e-6)
    np.testing.assert_allclose(last.loc["i3", evening], [0.25] * 4)
    np.testing.assert_allclose(last.loc["i1", ["share_tv", "share_mobile"]], [4 / 7, 1 / 7],
                               rtol=1e-6)
    # i2's event without a device counts for its time of day, not its devices
    np.testing.assert_allclose(last.loc["i2", ["share_mobile", "share_desktop"]], [2 / 6, 2 / 6],
                               rtol=1e-6)

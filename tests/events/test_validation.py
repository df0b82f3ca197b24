import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from recsys.events.schema import EVENT_COLUMNS, EVENT_DTYPES, Event
from recsys.events.validation import DUPLICATE_REASON, events_to_frame, validate_events


def _raw_frame() -> pd.DataFrame:
    rows = [
        ("e1", "u1", "i1", "view", None, "2024-05-01T10:00:00Z", '{"device":"tv"}'),  # ok
        ("e2", "u1", "i2", "rate", "4.5", "2024-05-01T10:01:00+02:00", ""),  # ok
        ("e3", "u2", "i1", "teleport", None, "2024-05-01T10:02:00Z", None),  # bad type
        ("e4", "u2", "i3", "view", None, "2024-05-01T10:03:00", None),  # naive
        ("e5", "u3", "i4", "rate", "9", "2024-05-01T10:04:00Z", None),  # rating range
        ("  ", "u3", "i5", "view", None, "2024-05-01T10:05:00Z", None),  # blank id
        ("e1", "u9", "i9", "click", None, "2024-05-01T10:06:00Z", None),  # duplicate of e1
        ("e8", "u4", "i6", "view", None, "2024-05-01T10:07:00Z", "{not json"),  # context
        ("e9", "u4", "i7", "watch", "0.5", "not a time", "[1, 2]"),  # two problems
        ("e10", "u5", "i8", "purchase", "", "1714557600", None),  # ok: epoch, no price
    ]
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS[:7])  # rec_id and position are optional
    frame["source"] = "test"
    return frame


def test_bad_rows_are_quarantined_with_reasons_and_nothing_is_lost() -> None:
    raw = _raw_frame()
    result = validate_events(raw)
    assert len(result.valid) + len(result.quarantined) == len(raw)
    assert result.valid["event_id"].tolist() == ["e1", "e2", "e10"]
    reasons = dict(zip(result.quarantined.index, result.quarantined["reason"], strict=True))
    assert reasons[2].startswith("event_type:")
    assert reasons[3].startswith("timestamp:") and "no timezone" in reasons[3]
    assert reasons[4].startswith("value:") and "rating" in reasons[4]
    assert reasons[5].startswith("event_id:") and "blank" in reasons[5]
    assert reasons[6] == DUPLICATE_REASON
    assert reasons[7].startswith("context: invalid JSON")
    assert "timestamp:" in reasons[8] and "context: must be a JSON object" in reasons[8]
    # Quarantined rows keep every input column, as strings.
    assert result.quarantined.loc[2, "source"] == "test"
    assert result.quarantined.loc[2, "value"] is None


def test_valid_frame_is_typed_and_normalised() -> None:
    valid = validate_events(_raw_frame()).valid
    assert valid.dtypes.astype(str).to_dict() == EVENT_DTYPES
    assert list(valid.columns) == EVENT_COLUMNS
    assert valid.loc[1, "timestamp"] == pd.Timestamp("2024-05-01T08:01:00Z")
    assert valid.loc[1, "value"] == 4.5 and np.isnan(valid.loc[0, "value"])
    assert valid["context"].tolist() == ['{"device":"tv"}', "{}", "{}"]
    assert valid.loc[2, "timestamp"] == pd.Timestamp("2024-05-01T10:00:00Z")


def test_duplicate_keeps_first_valid_occurrence() -> None:
    raw = pd.DataFrame(
        {
            "event_id": ["a", "a", "a"],
            "user_id": ["u", "u", "u"],
            "item_id": ["i", "i", "i"],
            "event_type": ["bogus", "view", "view"],
            "timestamp": pd.to_datetime(["2024-01-01"] * 3, utc=True),
        }
    )
    result = validate_events(raw)
    assert result.valid["event_type"].tolist() == ["view"]
    assert result.quarantined["reason"].iloc[1] == DUPLICATE_REASON
    assert result.quarantined.index.tolist() == [0, 2]


def test_typed_input_with_numeric_ids_and_naive_datetime_column() -> None:
    raw = pd.DataFrame(
        {
            "event_id": [1, 2],
            "user_id": [10.0, np.nan],
            "item_id": [5, 6],
            "event_type": ["view", "view"],
            "value": [np.nan, 1.0],
            "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 11:00"]),
        }
    )
    result = validate_events(raw)
    assert result.valid.empty
    assert all("no timezone" in r for r in result.quarantined["reason"])
    raw["timestamp"] = raw["timestamp"].dt.tz_localize("UTC")
    result = validate_events(raw)
    assert result.valid[["event_id", "user_id", "item_id"]].iloc[0].tolist() == ["1", "10", "5"]
    assert "user_id:" in result.quarantined["reason"].iloc[0]


def test_missing_required_column_raises() -> None:
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['timestamp'\]"):
        validate_events(_raw_frame().drop(columns=["timestamp"]))


def test_empty_frame_gives_empty_typed_results() -> None:
    result = validate_events(pd.DataFrame(columns=EVENT_COLUMNS))
    assert result.valid.empty and result.quarantined.empty
    assert result.valid.dtypes.astype(str).to_dict() == EVENT_DTYPES


def test_events_to_frame_round_trips_through_validation() -> None:
    events = [
        Event(
            event_id=f"e{n}",
            user_id=f"u{n % 3}",
            item_id=n,
            event_type="rate" if n % 2 else "view",
            value=3.0 if n % 2 else None,
            timestamp=datetime(2024, 1, 1, 0, 0, n, 123456, tzinfo=UTC),
            context={"device": "mobile", "n": n},
        )
        for n in range(5)
    ]
    frame = events_to_frame(events)
    assert frame.loc[3, "timestamp"] == pd.Timestamp("2024-01-01T00:00:03.123456Z")
    again = validate_events(frame)
    assert again.quarantined.empty
    pd.testing.assert_frame_equal(again.valid, frame)


def test_large_clean_batch_is_all_valid() -> None:
    n = 20_000
    rng = np.random.default_rng(0)
    raw = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "user_id": rng.integers(0, 500, n).astype(str),
            "item_id": rng.integers(0, 300, n).astype(str),
            "event_type": "view",
            "value": np.nan,
            "timestamp": pd.to_datetime(rng.integers(1.6e9, 1.7e9, n), unit="s", utc=True),
            "context": '{"device":"mobile"}',
        }
    )
    result = validate_events(raw)
    assert len(result.valid) == n


def test_rec_id_and_position_are_kept_and_checked() -> None:
    raw = pd.DataFrame({
        "event_id": ["a", "b", "c"], "user_id": ["u1"] * 3, "item_id": ["i1", "i2", "i3"],
        "event_type": ["click"] * 3, "timestamp": ["2024-05-01T10:00:00Z"] * 3,
        "rec_id": ["r-1", None, "r-2"], "position": [0, None, -1],
    })
    result = validate_events(raw)
    assert result.valid["rec_id"].tolist() == ["r-1", None]
    assert result.valid["position"].tolist() == [0, pd.NA]
    assert result.valid.dtypes.astype(str).to_dict() == EVENT_DTYPES
    assert result.quarantined.loc[2, "reason"].startswith("position:")


def test_column_checks_accept_exactly_what_the_model_accepts() -> None:
    # Typed rows of every shape the column-wise checks take or leave to the model: the
    # result must be the model's, row for row (values, order, reasons).
    stamps = pd.Series(pd.to_datetime([1_714_557_600_123_456_789 + k * 10**9 for k in range(8)],
                                      utc=True)).dt.tz_convert("Europe/Paris")
    raw = pd.DataFrame({
        "event_id": ["a", " b ", "Cafe\u0301", "d", "e", "a", "x" * 129, "h"],
        "user_id": ["u1", "u2", "u3", "u\x00", "u5", "u6", "u7", "u8"],
        "item_id": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan, 8.5],
        "event_type": ["rate", "view", "watch", "view", "purchase", "view", "view", "view"],
        "value": [4.5, np.nan, 0.5, np.nan, -1.0, np.nan, np.nan, np.nan],
        "timestamp": stamps,
        "context": ['{"b":1,"a":2}', None, "", "{}", "[1]", "{}", '{"k":[1]}', "{}"],
        "position": [0.0, np.nan, 2.0, 1001.0, 3.0, 4.0, 5.0, 6.0],
    })
    result = validate_events(raw, known_ids={"z"})
    records = raw.astype(object).where(raw.notna(), None).to_dict("records")
    expected = []
    for row, record in enumerate(records):
        record["timestamp"] = raw["timestamp"].iloc[row].to_pydatetime(warn=False)
        record["context"] = json.loads(record["context"] or "{}")
        if isinstance(record["item_id"], float) and record["item_id"] % 1 == 0:
            record["item_id"] = int(record["item_id"])
        try:
            expected.append(Event.model_validate(record))
        except ValueError:
            continue
    assert [event.event_id for event in expected] == ["a", "b", "Café", "a"]
    pd.testing.assert_frame_equal(result.valid, events_to_frame(expected[:3]))
    assert result.quarantined.index.tolist() == [3, 4, 5, 6, 7]
    assert result.quarantined.loc[5, "reason"] == DUPLICATE_REASON
    assert result.quarantined.loc[3, "reason"].startswith("user_id:")
    assert "context: must be a JSON object" in result.quarantined.loc[4, "reason"]
    assert result.quarantined.loc[6, "reason"].startswith("event_id:")
    assert result.quarantined.loc[7, "reason"].startswith("item_id:")

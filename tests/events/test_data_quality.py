"""The Great Expectations suite over validated events."""

import pandas as pd

from recsys.events.data_quality import validate_events_frame


def frame(**overrides: list) -> pd.DataFrame:
    data = {
        "event_id": ["a", "b"],
        "user_id": ["u1", "u2"],
        "item_id": ["i1", "i2"],
        "event_type": ["view", "rate"],
        "value": [float("nan"), 4.0],
        "timestamp": pd.to_datetime(["2026-01-01T00:00Z", "2026-01-02T00:00Z"], utc=True),
        "context": ["{}", "{}"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_clean_events_pass() -> None:
    outcome = validate_events_frame(frame())
    assert outcome.success and outcome.failed == []


def test_each_broken_expectation_is_reported() -> None:
    future = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2)
    bad = frame(
        event_id=["a", "a"],
        event_type=["purchase", "like"],
        value=[-1.0, 4.0],  # a negative price
        timestamp=pd.Series([pd.Timestamp("2026-01-01", tz="UTC"), future]),
        position=pd.array([-1, pd.NA], dtype="Int64"),  # a place before the list's first
    )
    outcome = validate_events_frame(bad)
    assert not outcome.success
    failed = {(r["expectation"], r["column"]) for r in outcome.results if not r["success"]}
    assert failed == {  # and nothing else: the rules are the Event model's
        ("expect_column_values_to_be_unique", "event_id"),
        ("expect_column_values_to_be_in_set", "event_type"),
        ("expect_column_values_to_be_between", "value"),
        ("expect_column_values_to_be_between", "timestamp_lag_s"),
        ("expect_column_values_to_be_between", "position"),
    }


def test_value_rules_are_the_event_models_type_by_type() -> None:
    from pydantic import ValidationError

    from recsys.events.schema import Event

    cases = [("rate", 5.5), ("rate", float("nan")), ("watch", 1.5), ("purchase", -3.0),
             ("view", -7.0), ("rate", 3.0), ("watch", 0.5), ("purchase", 0.0)]
    for event_type, value in cases:
        events = frame(event_type=["view", event_type], value=[float("nan"), value])
        suite_ok = validate_events_frame(events).success
        try:
            Event.model_validate({"event_id": "e", "user_id": "u", "item_id": "i",
                                  "event_type": event_type, "timestamp": "2026-01-01T00:00Z",
                                  "value": None if value != value else value})
            model_ok = True
        except ValidationError:
            model_ok = False
        assert suite_ok == model_ok, (event_type, value)

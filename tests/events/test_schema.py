from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from recsys.events.schema import (
    EVENT_COLUMNS,
    Event,
    EventBatch,
    EventType,
    Item,
    UserProfile,
    context_to_json,
)


def _event(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "timestamp": "2024-05-01T12:00:00Z",
    }
    base.update(overrides)
    return base


def _errors(payload: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        Event.model_validate(payload)
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


def test_valid_event_is_normalised() -> None:
    event = Event.model_validate(
        _event(user_id=7, item_id=42, timestamp="2024-05-01T14:00:00+02:00", context={"d": 1})
    )
    assert event.user_id == "7" and event.item_id == "42"
    assert event.timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert event.timestamp.utcoffset() == timedelta(0)
    assert event.event_type is EventType.VIEW
    assert event.value is None and event.context == {"d": 1}


def test_epoch_seconds_and_aware_datetimes_are_accepted() -> None:
    assert Event.model_validate(_event(timestamp=1_714_564_800)).timestamp == datetime(
        2024, 5, 1, 12, tzinfo=UTC
    )
    # Large epochs stay seconds (pydantic alone would switch to milliseconds above 2e10): the
    # year 2920, refused as ahead of the clock.
    with pytest.raises(ValidationError, match="2920-08-30"):
        Event.model_validate(_event(timestamp=30_000_000_000))
    tokyo = datetime(2024, 5, 1, 21, tzinfo=timezone(timedelta(hours=9)))
    assert Event.model_validate(_event(timestamp=tokyo)).timestamp.hour == 12


@pytest.mark.parametrize("naive", ["2024-05-01T12:00:00", datetime(2024, 5, 1, 12)])
def test_naive_timestamp_is_rejected_with_a_clear_message(naive: object) -> None:
    message = _errors(_event(timestamp=naive))["timestamp"]
    assert "no timezone" in message and "Z" in message


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"event_id": "   "}, "event_id", "blank"),
        ({"event_id": ""}, "event_id", "at least 1"),
        ({"item_id": "x" * 129}, "item_id", "at most 128"),
        ({"user_id": True}, "user_id", "valid string"),
        ({"event_type": "like"}, "event_type", "'view'"),
        ({"event_type": "rate", "value": 7}, "value", "[0.5, 5.0]"),
        ({"event_type": "rate"}, "value", "rating"),
        ({"event_type": "watch", "value": 1.5}, "value", "fraction"),
        ({"event_type": "purchase", "value": -3}, "value", ">= 0"),
        ({"value": float("inf")}, "value", "finite"),
        ({"context": {"nested": {"a": 1}}}, "context.nested.constrained-str", "valid string"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_invalid_fields_are_named_in_the_error(
    overrides: dict[str, object], field: str, fragment: str
) -> None:
    errors = _errors(_event(**overrides))
    assert field in errors, errors
    assert fragment in errors[field]


def test_value_semantics_per_event_type() -> None:
    assert Event.model_validate(_event(event_type="rate", value=0.5)).value == 0.5
    assert Event.model_validate(_event(event_type="watch", value=0.0)).value == 0.0
    assert Event.model_validate(_event(event_type="purchase")).value is None
    assert Event.model_validate(_event(event_type="click", value=-2.5)).value == -2.5


def test_json_round_trip() -> None:
    event = Event.model_validate(_event(context={"device": "tv", "n": 2, "ok": True}))
    again = Event.model_validate_json(event.model_dump_json())
    assert again == event
    assert isinstance(again.context["ok"], bool) and isinstance(again.context["n"], int)


def test_batch_size_limits() -> None:
    assert len(EventBatch.model_validate({"events": [_event()]}).events) == 1
    with pytest.raises(ValidationError, match="at least 1"):
        EventBatch.model_validate({"events": []})
    with pytest.raises(ValidationError, match="at most 1000"):
        EventBatch.model_validate({"events": [_event(event_id=f"e{n}") for n in range(1001)]})


def test_item_and_user_models() -> None:
    item = Item(item_id=5, title="Item 5", categories=["drama"], price=9.5)
    assert item.item_id == "5" and item.in_stock and item.created_at is None
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Item(item_id="i", title="t", price=-1)
    with pytest.raises(ValidationError, match="no timezone"):
        Item(item_id="i", title="t", created_at="2024-01-01T00:00:00")
    assert UserProfile(user_id=3, age=30).user_id == "3"
    with pytest.raises(ValidationError):
        UserProfile(user_id="u", age=-1)


def test_column_constants_and_context_json() -> None:
    assert EVENT_COLUMNS == list(Event.model_fields)
    assert context_to_json({"b": 1, "a": "x"}) == '{"a":"x","b":1}'
    assert context_to_json({}) == "{}"


def test_ids_are_trimmed_and_nfc_normalized_and_control_characters_refused() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    event = Event.model_validate(_event(user_id=f"  {decomposed} ", item_id=17))
    assert event.user_id == composed and event.item_id == "17"
    for bad in ("u\x00", "u\n1", "u\u200b"):
        with pytest.raises(ValidationError, match="control"):
            Event.model_validate(_event(user_id=bad))
    with pytest.raises(ValidationError, match="128"):
        Event.model_validate(_event(user_id="u" * 129))


def test_timestamps_beyond_the_allowed_skew_are_refused() -> None:
    now = datetime.now(tz=UTC)
    Event.model_validate(_event(timestamp=now + timedelta(minutes=4)))
    with pytest.raises(ValidationError, match="ahead of the server's clock"):
        Event.model_validate(_event(timestamp=now + timedelta(minutes=6)))


def test_context_is_bounded() -> None:
    Event.model_validate(_event(context={f"k{i}": "v" for i in range(32)}))
    for context in ({f"k{i}": "v" for i in range(33)}, {"k" * 65: 1}, {"k": "v" * 257}):
        with pytest.raises(ValidationError):
            Event.model_validate(_event(context=context))

"""The data contract: pydantic models for events, items and users, and their DataFrame forms.

This module is the single definition of what a valid event, item or user is. The HTTP
service validates request bodies with these models, :mod:`recsys.events.validation` validates
DataFrames row by row with the same models, and every producer of DataFrames (importers,
the synthetic world, the event log) emits the column layouts declared here.

DataFrame forms
---------------
Events (:data:`EVENT_COLUMNS`)
    ids and ``event_type`` are ``str`` (object dtype), ``value`` is ``float64`` (NaN = none),
    ``timestamp`` is ``datetime64[ns, UTC]`` and ``context`` is a JSON object string;
    ``rec_id`` (``str`` or None) and ``position`` (nullable ``Int64``) tie an outcome to the
    recommendation list that showed the item, and may be absent from a producer's frame.
Items (:data:`ITEM_COLUMNS`)
    ``categories`` holds a ``list[str]`` per row, ``price`` is ``float64`` (NaN = unknown),
    ``in_stock`` is ``bool`` and ``created_at`` is ``datetime64[ns, UTC]`` (NaT = unknown).
Users (:data:`USER_COLUMNS`)
    ``age`` is nullable ``Int64``; the other attributes are ``str`` or None.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import pandas as pd
import pyarrow as pa
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from recsys.platform.settings import get_settings

MAX_ID_LENGTH = 128
MAX_BATCH_SIZE = 1000
MAX_CONTEXT_KEYS = 32
MAX_CONTEXT_KEY_LENGTH = 64
MAX_CONTEXT_TEXT_LENGTH = 256
RATING_MIN = 0.5
RATING_MAX = 5.0
MAX_POSITION = 1000


class EventType(StrEnum):
    """What the user did with the item."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATE = "rate"
    WATCH = "watch"
    WATCHLIST_ADD = "watchlist_add"
    WATCHLIST_REMOVE = "watchlist_remove"


def _int_to_str(value: Any) -> Any:
    # Numeric ids are common in source systems (MovieLens, SQL keys); bool is an int
    # subclass but never a legitimate id, so it is left for the str validator to reject.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _normalized(value: Any) -> Any:
    # One spelling per id whatever the entrance (API, files): Unicode NFC, no surrounding
    # white space. Otherwise "Café" typed two ways, or "u1 " from a CSV, are two users.
    if not isinstance(value, str):
        return value
    normalized = unicodedata.normalize("NFC", value).strip()
    if value and not normalized:
        raise PydanticCustomError("blank_id", "must not be blank (only whitespace)")
    return normalized


def _non_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank_id", "must not be blank (only whitespace)")
    return value


def _printable(value: str) -> str:
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in value):
        raise PydanticCustomError(
            "control_character", "must not contain control or invisible format characters")
    return value


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(_printable),
    BeforeValidator(_normalized),
    BeforeValidator(_int_to_str),
]
"""An id: a string (integers accepted), NFC-normalized and trimmed, 1-128 characters, no
control characters."""


def _utc_datetime(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
    # Epoch numbers are interpreted as seconds; pydantic's own heuristic would silently
    # switch to milliseconds above 2e10, which hides unit mistakes.
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise PydanticCustomError(
                "epoch_range", "epoch seconds {value} out of range", {"value": value}
            ) from exc
    try:
        parsed: datetime = handler(value)
    except ValidationError as exc:
        if any(err["type"] == "timezone_aware" for err in exc.errors()):
            raise PydanticCustomError(
                "timezone_aware",
                "timestamp has no timezone; send an aware time such as "
                "'2024-05-01T12:00:00Z' or '2024-05-01T14:00:00+02:00', or epoch seconds",
            ) from exc
        raise
    return parsed.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, WrapValidator(_utc_datetime)]

ContextText = Annotated[str, StringConstraints(max_length=MAX_CONTEXT_TEXT_LENGTH)]
ContextValue = ContextText | int | float | bool
ContextKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONTEXT_KEY_LENGTH)]
Context = Annotated[dict[ContextKey, ContextValue], Field(max_length=MAX_CONTEXT_KEYS)]
"""Free context of an event or request: at most 32 keys of 64 characters, texts of 256."""


def event_time_window(now: datetime | None = None) -> tuple[datetime | None, datetime]:
    """The oldest and newest event time accepted now: the retention (``None``: no lower
    bound) and the allowed clock skew ahead of this server's clock."""
    settings = get_settings()
    now = now or datetime.now(tz=UTC)
    oldest = (now - timedelta(days=settings.event_retention_days)
              if settings.event_retention_days else None)
    return oldest, now + timedelta(seconds=settings.event_max_future_seconds)


class Event(BaseModel):
    """One user-item interaction; ``event_id`` makes ingestion idempotent."""

    model_config = ConfigDict(extra="forbid")

    event_id: Identifier = Field(description="Idempotency key chosen by the producer.")
    user_id: Identifier
    item_id: Identifier
    event_type: EventType
    value: float | None = Field(
        default=None,
        allow_inf_nan=False,
        validate_default=True,
        description="rate: rating in [0.5, 5]; watch: watched fraction in [0, 1]; "
        "purchase: price >= 0; other types: optional free number.",
    )
    timestamp: UtcDatetime = Field(
        description="When it happened; normalised to UTC. At most a few minutes ahead of the "
        "server's clock (an event from the future would freeze the user's online state)."
    )
    context: Context = Field(default_factory=dict, description="Device, page, session, ...")
    rec_id: Identifier | None = Field(
        default=None, description="The `rec_id` of the recommendation list the item was shown "
        "in, when the outcome came from one (without it, the latest impression of the item "
        "for the user within the attribution window is assumed).")
    position: int | None = Field(
        default=None, ge=0, le=MAX_POSITION,
        description="0-based position of the item in that list.")

    @field_validator("timestamp")
    @classmethod
    def _within_window(cls, value: datetime) -> datetime:
        oldest, newest = event_time_window()
        if value > newest:
            raise PydanticCustomError(
                "future_timestamp",
                "timestamp {value} is ahead of the server's clock by more than the allowed "
                "skew (newest accepted: {newest})",
                {"value": value.isoformat(), "newest": newest.isoformat(timespec="seconds")},
            )
        if oldest is not None and value < oldest:
            raise PydanticCustomError(
                "expired_timestamp",
                "timestamp {value} is older than the retention (oldest accepted: {oldest})",
                {"value": value.isoformat(), "oldest": oldest.isoformat(timespec="seconds")},
            )
        return value

    @field_validator("value")
    @classmethod
    def _value_matches_type(cls, value: float | None, info: ValidationInfo) -> float | None:
        event_type = info.data.get("event_type")
        # If event_type itself failed validation, its own error already explains the row.
        if event_type == EventType.RATE:
            if value is None or not RATING_MIN <= value <= RATING_MAX:
                raise PydanticCustomError(
                    "rating_range",
                    "rate events need a rating in [{lo}, {hi}], got {value}",
                    {"lo": RATING_MIN, "hi": RATING_MAX, "value": value},
                )
        elif event_type == EventType.WATCH:
            if value is None or not 0.0 <= value <= 1.0:
                raise PydanticCustomError(
                    "watch_fraction",
                    "watch events need the watched fraction in [0, 1], got {value}",
                    {"value": value},
                )
        elif event_type == EventType.PURCHASE and value is not None and value < 0:
            raise PydanticCustomError(
                "negative_price", "purchase price must be >= 0, got {value}", {"value": value}
            )
        return value


class EventBatch(BaseModel):
    """A batch of events posted in one request."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH_SIZE)


class Item(BaseModel):
    """A catalog item."""

    model_config = ConfigDict(extra="forbid")

    item_id: Identifier
    title: Annotated[str, StringConstraints(min_length=1), AfterValidator(_non_blank)]
    categories: list[str] = Field(default_factory=list)
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    in_stock: bool = True
    created_at: UtcDatetime | None = None


class UserProfile(BaseModel):
    """Optional demographic attributes of a user."""

    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    age: int | None = Field(default=None, ge=0, le=130)
    gender: str | None = None
    occupation: str | None = None
    region: str | None = None


EVENT_COLUMNS = ["event_id", "user_id", "item_id", "event_type", "value", "timestamp", "context",
                 "rec_id", "position"]
#: Columns a producer may leave out (the frame forms fill them with missing values).
OPTIONAL_EVENT_COLUMNS = ("rec_id", "position")
ITEM_COLUMNS = ["item_id", "title", "categories", "price", "in_stock", "created_at"]
USER_COLUMNS = ["user_id", "age", "gender", "occupation", "region"]

EVENT_DTYPES: dict[str, str] = {
    "event_id": "object",
    "user_id": "object",
    "item_id": "object",
    "event_type": "object",
    "value": "float64",
    "timestamp": "datetime64[ns, UTC]",
    "context": "object",
    "rec_id": "object",
    "position": "Int64",
}
#: The event columns as stored (Parquet): explicit, so an empty day has the same types as a
#: full one and a partitioned table reads back whole.
EVENT_ARROW_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("user_id", pa.string()), ("item_id", pa.string()),
    ("event_type", pa.string()), ("value", pa.float64()),
    ("timestamp", pa.timestamp("ns", tz="UTC")), ("context", pa.string()),
    ("rec_id", pa.string()), ("position", pa.int64()),
])
ITEM_DTYPES: dict[str, str] = {
    "item_id": "object",
    "title": "object",
    "categories": "object",
    "price": "float64",
    "in_stock": "bool",
    "created_at": "datetime64[ns, UTC]",
}
USER_DTYPES: dict[str, str] = {
    "user_id": "object",
    "age": "Int64",
    "gender": "object",
    "occupation": "object",
    "region": "object",
}


def empty_frame(dtypes: Mapping[str, str]) -> pd.DataFrame:
    """An empty DataFrame with the given columns and dtypes (e.g. :data:`EVENT_DTYPES`)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})


def context_to_json(context: Mapping[str, Any]) -> str:
    """Serialise an event context to the canonical JSON string stored in DataFrames."""
    if not context:
        return "{}"
    # Sorted keys and compact separators make equal contexts byte-identical, so the string
    # can be hashed and compared.
    return json.dumps(context, sort_keys=True, separators=(",", ":"))

"""Row-level validation of event DataFrames against the :class:`~recsys.events.schema.Event` model.

Every row is held to the same pydantic model the HTTP service uses, so a row accepted
here is exactly a row the API would have accepted. Column-wise checks
(:mod:`recsys.events.column_checks`) prove most rows valid at numpy speed; the model itself
sees only the rows they cannot prove, and words the reason of each one it rejects. Rows that
fail are not dropped: they are returned in ``quarantined`` with a human-readable reason, and
``len(valid) + len(quarantined) == len(raw)`` always holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from recsys.events.column_checks import EventColumns, check_columns
from recsys.events.schema import EVENT_COLUMNS, EVENT_DTYPES, Event, context_to_json, empty_frame

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("event_id", "user_id", "item_id", "event_type", "timestamp")
DUPLICATE_REASON = "duplicate event_id"
EARLIER_DUPLICATE_REASON = "duplicate event_id (accepted on another day)"

_ID_COLUMNS = ("event_id", "user_id", "item_id")
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
#: Rows validated together (their Python values and models held at once).
CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of :func:`validate_events`.

    Attributes
    ----------
    valid : pandas.DataFrame
        Accepted events in :data:`~recsys.events.schema.EVENT_COLUMNS` form, input order kept.
    quarantined : pandas.DataFrame
        The rejected input rows (all columns as strings, missing as None, original index)
        plus a ``reason`` column naming the field(s) and what was wrong.
    """

    valid: pd.DataFrame
    quarantined: pd.DataFrame


def validate_events(raw: pd.DataFrame, known_ids: set[str] | None = None) -> ValidationResult:
    """Validate an events DataFrame, each row as the :class:`Event` model would.

    Parameters
    ----------
    raw : pandas.DataFrame
        Events with at least the columns in :data:`REQUIRED_COLUMNS`; ``value`` and
        ``context`` are optional. Values may be typed (as produced by this package) or raw
        strings from a file. Extra columns are carried into ``quarantined`` but not into
        ``valid``.
    known_ids : set of str, optional
        Event ids accepted before (e.g. on other days); a row repeating one is quarantined
        as a duplicate, so an event retried across days counts once. Updated in place with
        the ids accepted here.

    Returns
    -------
    ValidationResult
        Valid rows (duplicates of an earlier valid ``event_id`` excluded) and quarantined rows.

    Raises
    ------
    ValueError
        If a required column is missing.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in raw.columns]
    if missing:
        raise ValueError(
            f"events frame is missing required column(s) {missing}; "
            f"got {list(raw.columns)}, expected {EVENT_COLUMNS}"
        )
    n = len(raw)
    checked = check_columns(raw)
    # every row's output values: the checked columns', then the model's where it decided
    columns = checked.values.copy()
    # The rows the columns could not prove valid, through the model one by one: its own
    # reasons for the bad ones, its normalised values for the good ones.
    reasons = np.full(n, None, dtype=object)
    passed = checked.ok.copy()
    slow = np.flatnonzero(~checked.ok)
    for offset in range(0, len(slow), CHUNK_ROWS):
        rows = slow[offset:offset + CHUNK_ROWS]
        for position, outcome in zip(rows, _through_model(raw.iloc[rows]), strict=True):
            if isinstance(outcome, str):
                reasons[position] = outcome
            else:
                _put(columns, position, *outcome)
                passed[position] = True
    # An event_id counts once: its first valid row wins, unless accepted on another day.
    ids = pd.Series(columns.event_id)
    earlier = known_ids if known_ids is not None else set()
    repeated = passed & ids.isin(earlier).to_numpy() if earlier else np.zeros(n, dtype=bool)
    fresh = passed & ~repeated
    duplicate = np.zeros(n, dtype=bool)
    duplicate[fresh] = ids[fresh].duplicated(keep="first").to_numpy()
    reasons[repeated] = EARLIER_DUPLICATE_REASON
    reasons[duplicate] = DUPLICATE_REASON
    accepted = fresh & ~duplicate
    rejected = np.flatnonzero(~accepted)
    quarantined = _as_strings(raw.iloc[rejected])
    quarantined["reason"] = reasons[rejected].tolist()
    if len(rejected):
        logger.warning("quarantined %d of %d event rows", len(rejected), n)
    earlier.update(columns.event_id[accepted].tolist())
    valid = _frame(columns, accepted) if accepted.any() else empty_frame(EVENT_DTYPES)
    return ValidationResult(valid=valid, quarantined=quarantined)


def _through_model(chunk: pd.DataFrame) -> list[str | tuple[Event, str]]:
    """Each row's quarantine reason, or its validated event and canonical context JSON."""
    columns = [_column_values(chunk, name) for name in EVENT_COLUMNS]
    contexts = _ContextCodec()
    outcomes: list[str | tuple[Event, str]] = []
    for row in zip(*columns, strict=True):
        record = dict(zip(EVENT_COLUMNS, row, strict=True))
        canonical_context, context_error = contexts.prepare(record)
        try:
            event = _EVENT_ADAPTER.validate_python(record)
        except ValidationError as exc:
            outcomes.append(_join_reasons(_describe(exc), context_error))
            continue
        if context_error is not None:
            outcomes.append(context_error)
        else:
            outcomes.append((event, canonical_context or context_to_json(event.context)))
    return outcomes


def _put(columns: EventColumns, row: int, event: Event, context: str) -> None:
    """Row ``row``'s values from its validated event."""
    columns.event_id[row], columns.user_id[row] = event.event_id, event.user_id
    columns.item_id[row], columns.event_type[row] = event.item_id, event.event_type.value
    columns.value[row] = np.nan if event.value is None else event.value
    # The model has normalised every timestamp to UTC.
    columns.micros[row] = (event.timestamp - _EPOCH) // _ONE_MICROSECOND
    columns.context[row], columns.rec_id[row] = context, event.rec_id
    columns.position_missing[row] = event.position is None
    columns.position[row] = 0 if event.position is None else event.position


def _frame(columns: EventColumns, rows: np.ndarray) -> pd.DataFrame:
    """The :data:`~recsys.events.schema.EVENT_COLUMNS` frame of the rows selected."""
    position = pd.arrays.IntegerArray(columns.position[rows], columns.position_missing[rows])
    return pd.DataFrame(
        {
            "event_id": columns.event_id[rows],
            "user_id": columns.user_id[rows],
            "item_id": columns.item_id[rows],
            "event_type": columns.event_type[rows],
            "value": columns.value[rows],
            # Integer microseconds avoid pandas' slow object path for aware datetimes.
            "timestamp": pd.to_datetime(columns.micros[rows], unit="us",
                                        utc=True).as_unit("ns"),
            "context": columns.context[rows],
            "rec_id": columns.rec_id[rows],
            "position": position,
        },
        columns=EVENT_COLUMNS,
    )


def events_to_frame(events: Iterable[Event]) -> pd.DataFrame:
    """Build the :data:`~recsys.events.schema.EVENT_COLUMNS` DataFrame from validated events.

    Parameters
    ----------
    events : iterable of Event
        Validated events, in the order wanted in the frame.

    Returns
    -------
    pandas.DataFrame
        Columns and dtypes as in :data:`~recsys.events.schema.EVENT_DTYPES`, RangeIndex.
    """
    rows = list(events)
    return _frame_from_events(rows, [context_to_json(event.context) for event in rows])


def _frame_from_events(rows: list[Event], contexts: list[str]) -> pd.DataFrame:
    if not rows:
        return empty_frame(EVENT_DTYPES)
    # Integer microseconds avoid pandas' slow object path for aware datetimes; the model
    # has already normalised every timestamp to UTC.
    micros = np.fromiter(
        ((event.timestamp - _EPOCH) // _ONE_MICROSECOND for event in rows),
        dtype=np.int64,
        count=len(rows),
    )
    values = np.fromiter(
        (np.nan if event.value is None else event.value for event in rows),
        dtype=np.float64,
        count=len(rows),
    )
    return pd.DataFrame(
        {
            "event_id": [event.event_id for event in rows],
            "user_id": [event.user_id for event in rows],
            "item_id": [event.item_id for event in rows],
            "event_type": [event.event_type.value for event in rows],
            "value": values,
            "timestamp": pd.to_datetime(micros, unit="us", utc=True).as_unit("ns"),
            "context": contexts,
            "rec_id": [event.rec_id for event in rows],
            "position": pd.array([event.position for event in rows], dtype="Int64"),
        },
        columns=EVENT_COLUMNS,
    )


def _column_values(raw: pd.DataFrame, name: str) -> list[Any]:
    """Python values of one column, with every spelling of "missing" turned into None."""
    if name not in raw.columns:
        return [None] * len(raw)
    series = raw[name]
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        # Python datetimes keep the timezone (or its absence, which the model rejects).
        values = pd.Series(series.array.to_pydatetime(), index=series.index, dtype=object)
    elif name in _ID_COLUMNS and pd.api.types.is_float_dtype(series):
        # A numeric id column with gaps is read as float; 17.0 means the id 17.
        values = series.astype(object)
        integral = series.notna() & (series % 1 == 0)
        values[integral] = series[integral].astype(np.int64).astype(object)
    else:
        values = series.astype(object)
    values = values.where(series.notna(), None)
    if name in ("value", "context") and series.dtype == object:
        # Empty cells of text inputs (CSV) mean "no value" for the optional fields.
        blank = values.map(lambda item: isinstance(item, str) and not item.strip())
        values = values.where(~blank.astype(bool), None)
    return values.tolist()


class _ContextCodec:
    """Decodes JSON-string contexts, caching by string: most rows repeat a few contexts."""

    def __init__(self) -> None:
        self._decoded: dict[str, tuple[dict[str, Any] | None, str]] = {}

    def prepare(self, record: dict[str, Any]) -> tuple[str | None, str | None]:
        """Replace ``record["context"]`` by a dict in place.

        Returns the canonical JSON of the context when it came as a string (None
        otherwise) and a quarantine reason when it cannot be decoded.
        """
        context = record["context"]
        if context is None:
            del record["context"]
            return "{}", None
        if not isinstance(context, str):
            return None, None
        if context not in self._decoded:
            self._decoded[context] = self._decode(context)
        decoded, outcome = self._decoded[context]
        if decoded is None:
            del record["context"]
            return None, outcome
        # pydantic copies the dict while validating, so sharing the cached one is safe.
        record["context"] = decoded
        return outcome, None

    @staticmethod
    def _decode(text: str) -> tuple[dict[str, Any] | None, str]:
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, f"context: invalid JSON ({exc.msg} at position {exc.pos})"
        if not isinstance(decoded, dict):
            return None, f"context: must be a JSON object, got {type(decoded).__name__}"
        return decoded, context_to_json(decoded)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


def _join_reasons(*reasons: str | None) -> str:
    return "; ".join(reason for reason in reasons if reason)


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as ``str`` (missing as None) so that any bad input can be stored."""
    return frame.astype(str).where(frame.notna(), None)

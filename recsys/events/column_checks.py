"""Column-wise checks that prove event rows valid without building an ``Event`` per row.

Each check is *sufficient*, not necessary: a row it passes is one the
:class:`~recsys.events.schema.Event` model accepts, with the same normalised values; a row
it does not pass may still be valid (a non-ASCII id, a timestamp given as text, a context
given as a dict) and goes to the model itself, which also words the reason when it is not.
So the model stays the one definition of a valid event, and the common case (typed frames
of plain ASCII ids, as every producer of this package writes them) costs numpy operations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import TypeAdapter, ValidationError

from recsys.events.schema import (
    MAX_ID_LENGTH,
    MAX_POSITION,
    RATING_MAX,
    RATING_MIN,
    Context,
    EventType,
    context_to_json,
    event_time_window,
)

#: An id the model keeps as it is: printable ASCII (NFC-stable, no control characters),
#: no surrounding space, 1 to MAX_ID_LENGTH characters.
_PLAIN_ID = rf"^[\x21-\x7e](?:[\x20-\x7e]{{0,{MAX_ID_LENGTH - 2}}}[\x21-\x7e])?$"
_CONTEXT_ADAPTER: TypeAdapter[dict[str, Any]] = TypeAdapter(Context)
_EVENT_TYPES = [member.value for member in EventType]
#: Rows this close to the retention's lower edge are left to the model, whose clock has
#: moved on by the time it sees them.
_RETENTION_MARGIN = timedelta(hours=1)
_NS_PER_US = 1_000


@dataclass(frozen=True)
class EventColumns:
    """One array per column of the validated events, in their output form."""

    event_id: np.ndarray
    user_id: np.ndarray
    item_id: np.ndarray
    event_type: np.ndarray
    value: np.ndarray
    micros: np.ndarray
    context: np.ndarray
    rec_id: np.ndarray
    position: np.ndarray
    position_missing: np.ndarray

    def copy(self) -> EventColumns:
        """A copy whose arrays can be written without touching these."""
        return EventColumns(*(np.array(getattr(self, f.name)) for f in fields(self)))


@dataclass(frozen=True)
class CheckedColumns:
    """The event columns (``values``) and the rows proven valid (``ok``).

    Values at rows where ``ok`` is False are placeholders, to be filled from the model.
    """

    ok: np.ndarray
    values: EventColumns


def check_columns(raw: pd.DataFrame) -> CheckedColumns:
    """Prove what rows of ``raw`` (the required event columns present) the model accepts."""
    n = len(raw)
    event_id, ok = _ids(raw["event_id"])
    user_id, ok_user = _ids(raw["user_id"])
    item_id, ok_item = _ids(raw["item_id"])
    rec_id, ok_rec = _ids(raw["rec_id"], optional=True) if "rec_id" in raw else (
        np.full(n, None, dtype=object), np.ones(n, dtype=bool))
    event_type = raw["event_type"].to_numpy(dtype=object)
    ok_type = pd.Series(event_type).isin(_EVENT_TYPES).to_numpy()
    value, ok_value = _values(raw["value"], event_type) if "value" in raw else (
        np.full(n, np.nan), _values_fit_types(np.full(n, np.nan), event_type))
    micros, ok_time = _timestamps(raw["timestamp"])
    context, ok_context = _contexts(raw["context"]) if "context" in raw else (
        np.full(n, "{}", dtype=object), np.ones(n, dtype=bool))
    position, missing, ok_position = _positions(raw["position"]) if "position" in raw else (
        np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), np.ones(n, dtype=bool))
    for part in (ok_user, ok_item, ok_rec, ok_type, ok_value, ok_time, ok_context, ok_position):
        ok &= part
    return CheckedColumns(ok, EventColumns(event_id, user_id, item_id, event_type, value, micros,
                                           context, rec_id, position, missing))


def _strings(values: np.ndarray) -> tuple[pa.StringArray, np.ndarray]:
    """The values as an Arrow string array (null where not a ``str``) and where they were."""
    try:
        array = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a mix of types: sort them out one by one
        is_str = np.fromiter((type(v) is str for v in values), dtype=bool, count=len(values))
        array = pa.array(np.where(is_str, values, None), type=pa.string(), from_pandas=True)
    return array, array.is_valid().to_numpy(zero_copy_only=False)


def _ids(series: pd.Series, optional: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Ids kept as they are by the model (ints as their decimal text); None where missing."""
    n = len(series)
    missing = series.isna().to_numpy()
    if pd.api.types.is_integer_dtype(series) and not missing.any():
        return series.to_numpy().astype(str).astype(object), np.ones(n, dtype=bool)
    if pd.api.types.is_float_dtype(series):
        # A numeric id column with gaps is read as float; 17.0 means the id 17.
        numbers = series.to_numpy(dtype=np.float64)
        whole = ~missing & (numbers % 1 == 0) & (np.abs(numbers) < 2.0**53)
        out = np.full(n, None, dtype=object)
        out[whole] = numbers[whole].astype(np.int64).astype(str)
        return out, whole | (missing & optional)
    if not (series.dtype == object or isinstance(series.dtype, pd.StringDtype)):
        return np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
    values = series.to_numpy(dtype=object, na_value=None)
    array, is_str = _strings(values)
    plain = pc.match_substring_regex(array, _PLAIN_ID).fill_null(False)
    ok = plain.to_numpy(zero_copy_only=False) | (missing & optional)
    return np.where(missing, None, values), ok


def _values(series: pd.Series, event_type: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values as float64 (NaN = none) and where they are finite or none and fit the type."""
    n = len(series)
    if pd.api.types.is_bool_dtype(series):
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        taken = np.ones(n, dtype=bool)
    else:  # numbers and blanks only, text to the model's parser
        # Only an object column's blank cells mean "no value" (CSV), as in the model's path.
        blank_is_none = series.dtype == object
        objects = series.to_numpy(dtype=object)
        numbers = np.full(n, np.nan)
        taken = np.zeros(n, dtype=bool)
        for row, cell in enumerate(objects):
            if cell is None or (isinstance(cell, float) and np.isnan(cell)):
                taken[row] = True
            elif isinstance(cell, int | float) and not isinstance(cell, bool):
                numbers[row], taken[row] = cell, True
            elif blank_is_none and isinstance(cell, str) and not cell.strip():
                taken[row] = True
    ok = taken & ~np.isinf(numbers) & _values_fit_types(numbers, event_type)
    return numbers, ok


def _values_fit_types(numbers: np.ndarray, event_type: np.ndarray) -> np.ndarray:
    """The model's rule tying a value to its event type (NaN is no value)."""
    kinds = pd.Series(event_type)
    with np.errstate(invalid="ignore"):
        rating = (numbers >= RATING_MIN) & (numbers <= RATING_MAX)
        fraction = (numbers >= 0.0) & (numbers <= 1.0)
        price = np.isnan(numbers) | (numbers >= 0.0)
    ok = np.ones(len(numbers), dtype=bool)
    for kind, rule in ((EventType.RATE, rating), (EventType.WATCH, fraction),
                       (EventType.PURCHASE, price)):
        of_kind = (kinds == kind.value).to_numpy()
        ok[of_kind] = rule[of_kind]
    return ok


def _timestamps(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch (UTC) and where they are aware and inside the window."""
    n = len(series)
    if not isinstance(series.dtype, pd.DatetimeTZDtype):  # naive or text: the model decides
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    nanos = series.dt.tz_convert("UTC").dt.as_unit("ns").array.asi8
    oldest, newest = event_time_window()
    # A Python datetime holds microseconds: the model sees the time floored to them.
    micros = nanos // _NS_PER_US
    ok = ~series.isna().to_numpy()
    ok &= micros <= pd.Timestamp(newest).value // _NS_PER_US
    if oldest is not None:
        ok &= micros >= pd.Timestamp(oldest + _RETENTION_MARGIN).value // _NS_PER_US
    return micros, ok


def _contexts(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Canonical JSON of each context given as JSON text (or missing: ``{}``) that the model
    accepts; dicts and anything else are left to it."""
    n = len(series)
    values = series.to_numpy(dtype=object)
    missing = series.isna().to_numpy()
    if not (series.dtype == object or isinstance(series.dtype, pd.StringDtype)):
        return np.full(n, "{}", dtype=object), missing
    array, _ = _strings(np.where(missing, None, values))
    # Most rows repeat a few contexts: each distinct text is decoded and checked once.
    encoded = array.dictionary_encode()
    blank_is_none = series.dtype == object  # a CSV's empty cell, as in the model's path
    canonical = [_canonical_context(text, blank_is_none)
                 for text in encoded.dictionary.to_pylist()]
    lookup = np.array([*canonical, None], dtype=object)
    accepted = np.array([text is not None for text in lookup], dtype=bool)
    indices = encoded.indices.fill_null(len(canonical)).to_numpy(zero_copy_only=False)
    out, ok = lookup[indices], accepted[indices]
    out[missing], ok[missing] = "{}", True
    return out, ok


def _canonical_context(text: str, blank_is_none: bool) -> str | None:
    """The canonical JSON of a context text the model accepts (blank: none, ``{}``)."""
    if blank_is_none and not text.strip():
        return "{}"
    try:
        decoded = json.loads(text)
        if not isinstance(decoded, dict):
            return None
        _CONTEXT_ADAPTER.validate_python(decoded)
    except (json.JSONDecodeError, ValidationError):
        return None
    return context_to_json(decoded)


def _positions(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (int64), where they are missing, and where they are whole and in range."""
    n = len(series)
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(series):
        return np.zeros(n, dtype=np.int64), missing, missing.copy()
    if pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = numbers % 1 == 0
    else:  # ints and gaps only; text is left to the model's parser
        objects = series.to_numpy(dtype=object)
        numbers = np.full(n, np.nan)
        whole = np.zeros(n, dtype=bool)
        for row, cell in enumerate(objects):
            if isinstance(cell, int) and not isinstance(cell, bool):
                numbers[row], whole[row] = cell, True
    with np.errstate(invalid="ignore"):
        ok = whole & (numbers >= 0) & (numbers <= MAX_POSITION)
    out = np.where(ok, numbers, 0).astype(np.int64)
    return out, missing, ok | missing

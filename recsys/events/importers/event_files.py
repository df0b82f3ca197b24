"""Generic event files (CSV, Parquet, JSONL) mapped onto the event columns.

A :class:`ColumnMapping` says which source column feeds each event field; rows are validated
one by one with the ``Event`` model, and rows that cannot be used are returned in
``quarantined`` with a reason, never dropped silently.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.events.importers.dataset import Dataset
from recsys.events.importers.tables import TABLE_STEMS, read_items, read_users, table_file
from recsys.events.schema import (
    ITEM_DTYPES,
    USER_DTYPES,
    context_to_json,
    empty_frame,
)
from recsys.events.validation import validate_events

logger = logging.getLogger(__name__)

EVENT_FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson")
_NAIVE_REASON = (
    "timestamp: no timezone; add an offset such as 'Z' or '+02:00', or set "
    "ColumnMapping.naive_timezone"
)
# An ISO time with an explicit offset; anything else is naive or unparseable.
_AWARE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds each event field of a generic events file.

    Optional fields (``event_type``, ``value``, ``event_id``, ``context``) may be absent from
    the file: the event type then defaults to ``default_event_type`` and the event id to a
    hash of the row. Epoch-number timestamps use ``timestamp_unit``; timestamps without a
    timezone are quarantined unless ``naive_timezone`` (e.g. ``"UTC"``) says what they mean.
    """

    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str = "timestamp"
    event_type: str = "event_type"
    value: str = "value"
    event_id: str = "event_id"
    context: str = "context"
    default_event_type: str = "view"
    timestamp_unit: str = "s"
    naive_timezone: str | None = None


def load_events_file(
    path: str | Path, mapping: ColumnMapping | None = None, *, validate: bool = True
) -> Dataset:
    """Load a generic events file (CSV, Parquet, JSONL) or a folder of them.

    Parameters
    ----------
    path : str or Path
        A file, or a folder whose event files are read in name order and combined; in a
        folder, ``items.*`` and ``users.*`` are the catalog and the user table
        (:mod:`recsys.events.importers.tables`).
    mapping : ColumnMapping, optional
        Source column names and defaults; the default expects the schema's own names.
    validate : bool
        Check every row against the ``Event`` model (about 50k rows/s). With False, only
        timestamps and values are checked, for trusted bulk loads.

    Returns
    -------
    Dataset
        ``events`` in EVENT_COLUMNS form; ``items`` and ``users`` as the folder's tables
        give them (empty without); ``quarantined`` holds the rejected source rows.

    Raises
    ------
    ValueError
        If a file type is unsupported or user, item or timestamp columns are missing.
    """
    path = Path(path)
    mapping = mapping or ColumnMapping()
    files = [path]
    items, users = empty_frame(ITEM_DTYPES), empty_frame(USER_DTYPES)
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in EVENT_FILE_SUFFIXES and not p.name.startswith(".")
            and p.stem.lower() not in TABLE_STEMS
        )
        if (items_file := table_file(path, "items", EVENT_FILE_SUFFIXES)) is not None:
            items = read_items(items_file)
        if (users_file := table_file(path, "users", EVENT_FILE_SUFFIXES)) is not None:
            users = read_users(users_file)
        if not files:
            raise ValueError(f"no event files ({', '.join(EVENT_FILE_SUFFIXES)}) in {path}")
    raw = pd.concat([_read_table(file) for file in files], ignore_index=True)
    events, reasons = _map_columns(raw, mapping)
    bad = reasons.notna()
    rejected = [(raw[bad], reasons[bad])]
    events = events[~bad]
    if validate:
        result = validate_events(events)
        events = result.valid
        rejected.append((raw.loc[result.quarantined.index], result.quarantined["reason"]))
    quarantined = pd.concat(
        [rows.astype(str).where(rows.notna(), None).assign(reason=why) for rows, why in rejected]
    )
    logger.info("loaded %d events from %s, quarantined %d", len(events), path, len(quarantined))
    return Dataset(
        events=events.reset_index(drop=True),
        items=items,
        users=users,
        quarantined=quarantined.sort_index(),
    )


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # Everything as text: ids keep leading zeros and bad cells reach the quarantine.
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    raise ValueError(f"unsupported events file {path}; expected one of {EVENT_FILE_SUFFIXES}")


def _map_columns(raw: pd.DataFrame, m: ColumnMapping) -> tuple[pd.DataFrame, pd.Series]:
    """Source columns to EVENT_COLUMNS, plus a reason per row that cannot be typed."""
    missing = [name for name in (m.user_id, m.item_id, m.timestamp) if name not in raw.columns]
    if missing:
        raise ValueError(
            f"events file lacks column(s) {missing}; it has {list(raw.columns)}; "
            "pass a ColumnMapping naming the right ones"
        )
    timestamp, ts_reason = _parse_timestamps(raw[m.timestamp], m)
    value, value_reason = _parse_values(raw[m.value]) if m.value in raw else (np.nan, None)
    frame = pd.DataFrame(index=raw.index)
    frame["event_id"] = _as_ids(raw[m.event_id]) if m.event_id in raw else None
    frame["user_id"] = _as_ids(raw[m.user_id])
    frame["item_id"] = _as_ids(raw[m.item_id])
    frame["event_type"] = (
        _as_ids(raw[m.event_type]) if m.event_type in raw else m.default_event_type
    )
    frame["value"] = value
    frame["timestamp"] = timestamp
    frame["context"] = raw[m.context].map(_as_context) if m.context in raw else "{}"
    no_id = frame["event_id"].isna() | (frame["event_id"].astype(str).str.strip() == "")
    if no_id.any():
        # Re-importing the same row must give the same id, so the id is a content hash.
        hashed = frame.loc[no_id, ["user_id", "item_id", "event_type", "value", "timestamp"]]
        digests = pd.util.hash_pandas_object(hashed, index=False).tolist()
        frame.loc[no_id, "event_id"] = [f"evt-{digest:016x}" for digest in digests]
    reasons = pd.concat([ts_reason, value_reason], axis=1)
    has_reason = reasons.notna().any(axis=1)
    combined = pd.Series(None, index=raw.index, dtype=object)
    combined[has_reason] = reasons[has_reason].apply(
        lambda row: "; ".join(part for part in row if isinstance(part, str)), axis=1
    )
    return frame, combined


def _parse_timestamps(series: pd.Series, m: ColumnMapping) -> tuple[pd.Series, pd.Series]:
    """UTC timestamps (NaT where unusable) and the reason for each unusable one."""
    reason = pd.Series(None, index=series.index, dtype=object)
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        out = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series):
        if m.naive_timezone:
            out = _localize(series, m.naive_timezone)
        else:
            reason[series.notna()] = _NAIVE_REASON
    elif pd.api.types.is_numeric_dtype(series):
        out = pd.to_datetime(series, unit=m.timestamp_unit, utc=True, errors="coerce")
    else:
        text = series.where(series.notna(), "").astype(str).str.strip()
        epoch = text.where(text.str.fullmatch(r"[+-]?\d+(\.\d*)?"))
        number = pd.to_numeric(epoch, errors="coerce")
        is_number = number.notna()
        out[is_number] = pd.to_datetime(
            number[is_number], unit=m.timestamp_unit, utc=True, errors="coerce"
        )
        aware = ~is_number & text.str.contains(_AWARE)
        out[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
        rest = ~is_number & ~aware & (text != "")
        naive = pd.to_datetime(text[rest], format="ISO8601", errors="coerce")
        if m.naive_timezone:
            out[rest] = _localize(naive, m.naive_timezone)
        else:
            reason[naive.index[naive.notna()]] = _NAIVE_REASON
        unusable = out.isna() & reason.isna() & (text != "")
        reason[unusable] = (
            "timestamp: cannot parse '"
            + text[unusable].str.slice(0, 64)
            + "' (expected ISO 8601 with an offset, or an epoch number)"
        )
    out = out.dt.as_unit("ns")
    reason[out.isna() & reason.isna()] = "timestamp: missing, out of range or not a local time"
    return out, reason


def _localize(naive: pd.Series, timezone: str) -> pd.Series:
    local = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    return local.dt.tz_convert("UTC")


def _parse_values(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float values (NaN = none) and a reason for cells that are not numbers."""
    reason = pd.Series(None, index=series.index, dtype=object)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64"), reason
    text = series.where(series.notna(), "").astype(str).str.strip()
    value = pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")
    bad = value.isna() & (text != "") & (text.str.lower() != "nan")
    reason[bad] = "value: not a number '" + text[bad].str.slice(0, 64) + "'"
    return value, reason


def _as_ids(series: pd.Series) -> pd.Series:
    """Ids as str, missing as None; integral floats (ints with gaps) lose their '.0'."""
    if pd.api.types.is_float_dtype(series) and (series.dropna() % 1 == 0).all():
        series = series.astype("Int64")
    return series.astype(str).where(series.notna(), None).astype(object)


def _as_context(value: object) -> str:
    if isinstance(value, dict):
        return context_to_json(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "{}"
    text = str(value)
    return text if text.strip() else "{}"

"""Load external data (MovieLens, generic event files) into the :mod:`training.schema` frames.

MovieLens ratings become ``rate`` events built with vectorised pandas/pyarrow code, because
ml-25m has 25 million rows. Generic event files are mapped onto the event columns with a
:class:`ColumnMapping` and, by default, validated row by row with the ``Event`` model; rows
that cannot be used are returned in ``quarantined`` with a reason, never dropped silently.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.schema import (
    EVENT_COLUMNS,
    ITEM_COLUMNS,
    ITEM_DTYPES,
    RATING_MAX,
    RATING_MIN,
    USER_COLUMNS,
    USER_DTYPES,
    context_to_json,
    empty_frame,
)
from training.validation import validate_events

logger = logging.getLogger(__name__)

EVENT_FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson")
FORMATS = ("auto", "movielens", "events")
# Index = occupation code in ml-1m users.dat (see its README).
ML1M_OCCUPATIONS = (
    *("other", "academic/educator", "artist", "clerical/admin", "college/grad student"),
    *("customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker"),
    *("K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist"),
    *("self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer"),
)
_LATIN1 = {"encoding": "latin-1", "quoting": csv.QUOTE_NONE, "keep_default_na": False}
_NO_GENRE = {"unknown", "(no genres listed)"}
_NAIVE_REASON = (
    "timestamp: no timezone; add an offset such as 'Z' or '+02:00', or set "
    "ColumnMapping.naive_timezone"
)
# An ISO time with an explicit offset; anything else is naive or unparseable.
_AWARE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")


@dataclass
class Dataset:
    """Frames loaded from one source; ``quarantined`` holds source rows plus ``reason``."""

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    quarantined: pd.DataFrame


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


def load_dataset(path: str | Path, fmt: str = "auto") -> Dataset:
    """Load a MovieLens folder, an events file or a folder of events files.

    Parameters
    ----------
    path : str or Path
        Folder or file.
    fmt : {"auto", "movielens", "events"}
        ``auto`` picks MovieLens when the folder holds its rating file, else events.

    Returns
    -------
    Dataset
        See :func:`load_movielens` and :func:`load_events_file`.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if not path.exists():
        raise FileNotFoundError(path)
    if fmt == "movielens" or (fmt == "auto" and path.is_dir() and _movielens_kind(path)):
        return load_movielens(path)
    return load_events_file(path)


def load_movielens(path: str | Path) -> Dataset:
    """Load ml-100k, ml-1m (also ml-10m) or ml-latest/20m/25m, detected from the file names.

    Every rating becomes a ``rate`` event with ``value`` = rating and event id
    ``ml-<user>-<item>-<timestamp>``, in file order; ratings outside [0.5, 5] are quarantined.
    """
    path = Path(path)
    kind = _movielens_kind(path)
    users = None
    dtypes = {"u": "int64", "i": "int64", "r": "float64", "t": "int64"}
    if kind == "100k":
        ratings = pd.read_csv(path / "u.data", sep="\t", names=list(dtypes), dtype=dtypes)
        items, users = _ml100k_items(path), _ml100k_users(path)
    elif kind == "1m":
        ratings = _read_dat(path / "ratings.dat", list(dtypes), dtypes)
        items = _ml1m_items(path)
        if (path / "users.dat").is_file():  # ml-10m ships no users file
            users = _ml1m_users(path)
    elif kind == "latest":
        source = dict(
            zip(["userId", "movieId", "rating", "timestamp"], dtypes.values(), strict=True)
        )
        ratings = pd.read_csv(path / "ratings.csv", engine="pyarrow", dtype=source)
        ratings = ratings[list(source)].set_axis(list(dtypes), axis=1)
        items = _ml_latest_items(path)
    else:
        raise ValueError(f"{path} is not a MovieLens folder (no u.data, ratings.dat, ratings.csv)")
    bad = ~ratings["r"].between(RATING_MIN, RATING_MAX)
    quarantined = ratings[bad].astype(str).set_axis(["user_id", "item_id", "rating", "ts"], axis=1)
    quarantined["reason"] = f"value: rating outside [{RATING_MIN}, {RATING_MAX}]"
    ratings = ratings[~bad]
    user, item, stamp = (pc.cast(pa.array(ratings[c]), pa.string()) for c in ("u", "i", "t"))
    event_ids = pc.binary_join_element_wise("ml", user, item, stamp, "-")
    events = pd.DataFrame(
        {
            # to_numpy, unlike to_pandas, skips string de-duplication: 3x faster here.
            "event_id": event_ids.to_numpy(zero_copy_only=False),
            "user_id": _shared_strings(ratings["u"].to_numpy()),
            "item_id": _shared_strings(ratings["i"].to_numpy()),
            "event_type": "rate",
            "value": ratings["r"].to_numpy(),
            "timestamp": pd.to_datetime(ratings["t"].to_numpy(), unit="s", utc=True).as_unit("ns"),
            "context": "{}",
        },
        columns=EVENT_COLUMNS,
    )
    if users is None:
        # No user file: list the users, with unknown demographics.
        users = pd.DataFrame({"user_id": pd.unique(events["user_id"])})
        users = users.reindex(columns=USER_COLUMNS).astype(USER_DTYPES)
    logger.info("MovieLens %s: %d events, %d quarantined", path, len(events), len(quarantined))
    return Dataset(events=events, items=items, users=users, quarantined=quarantined)


def _shared_strings(ids: np.ndarray) -> np.ndarray:
    """Integer ids as an object array of str, one str object per distinct id (saves RAM)."""
    codes, uniques = pd.factorize(ids)
    return uniques.astype(str).astype(object)[codes]


def _movielens_kind(path: Path) -> str | None:
    if (path / "u.data").is_file():
        return "100k"
    if (path / "ratings.dat").is_file():
        return "1m"
    if (path / "ratings.csv").is_file() and (path / "movies.csv").is_file():
        return "latest"
    return None


def _read_dat(path: Path, names: list[str], dtype: dict[str, str] | None = None) -> pd.DataFrame:
    # A two-character separator forces pandas' slow Python engine. These files hold only
    # numbers and codes, so rewriting "::" to a tab is safe and keeps the C parser.
    data = io.BytesIO(path.read_bytes().replace(b"::", b"\t"))
    return pd.read_csv(data, sep="\t", names=names, dtype=dtype, **_LATIN1)


def _items_frame(
    ids: pd.Series, titles: pd.Series, categories: list[list[str]], created: pd.Series
) -> pd.DataFrame:
    frame = pd.DataFrame({"item_id": ids.astype(str).to_numpy(), "title": titles.to_numpy()})
    frame["categories"] = categories
    frame["price"] = np.nan
    frame["in_stock"] = True
    frame["created_at"] = pd.to_datetime(created.to_numpy(), utc=True).as_unit("ns")
    return frame[ITEM_COLUMNS]


def _year_of(titles: pd.Series) -> pd.Series:
    """Release year from a "Title (1995)" string, as January 1st of that year."""
    year = titles.str.extract(r"\((\d{4})\)\s*$")[0]
    return pd.to_datetime(year, format="%Y", errors="coerce", utc=True)


def _genre_lists(genres: Iterable[str]) -> list[list[str]]:
    return [[g for g in value.split("|") if g not in _NO_GENRE] for value in genres]


def _ml100k_items(path: Path) -> pd.DataFrame:
    genres = pd.read_csv(path / "u.genre", sep="|", names=["name", "idx"], encoding="latin-1")
    names = genres.dropna().sort_values("idx")["name"].tolist()
    raw = pd.read_csv(path / "u.item", sep="|", header=None, dtype=str, **_LATIN1)
    flags = raw.iloc[:, 5 : 5 + len(names)].astype(int).to_numpy()
    categories = [
        [names[j] for j in np.flatnonzero(row) if names[j] not in _NO_GENRE] for row in flags
    ]
    created = pd.to_datetime(raw[2], format="%d-%b-%Y", errors="coerce", utc=True)
    return _items_frame(raw[0], raw[1], categories, created)


def _ml100k_users(path: Path) -> pd.DataFrame:
    users = pd.read_csv(path / "u.user", sep="|", names=USER_COLUMNS, dtype=str, encoding="latin-1")
    return users.astype(USER_DTYPES)


def _ml1m_items(path: Path) -> pd.DataFrame:
    # Titles may contain ':' (even a trailing one), so split on the outermost '::' only.
    rows = [
        line.split("::", 1)
        for line in (path / "movies.dat").read_text(encoding="latin-1").splitlines()
        if line
    ]
    ids = pd.Series([movie for movie, _ in rows])
    rest = [tail.rsplit("::", 1) for _, tail in rows]
    titles = pd.Series([title for title, _ in rest])
    return _items_frame(ids, titles, _genre_lists(g for _, g in rest), _year_of(titles))


def _ml1m_users(path: Path) -> pd.DataFrame:
    raw = _read_dat(path / "users.dat", ["user_id", "gender", "age", "occupation", "region"])
    raw["occupation"] = [
        ML1M_OCCUPATIONS[c] if 0 <= c < len(ML1M_OCCUPATIONS) else str(c) for c in raw["occupation"]
    ]
    raw["user_id"] = raw["user_id"].astype(str)
    raw["region"] = raw["region"].astype(str)
    return raw[USER_COLUMNS].astype(USER_DTYPES)


def _ml_latest_items(path: Path) -> pd.DataFrame:
    movies = pd.read_csv(path / "movies.csv", dtype=str, keep_default_na=False)
    return _items_frame(
        movies["movieId"],
        movies["title"],
        _genre_lists(movies["genres"]),
        _year_of(movies["title"]),
    )


def load_events_file(
    path: str | Path, mapping: ColumnMapping | None = None, *, validate: bool = True
) -> Dataset:
    """Load a generic events file (CSV, Parquet, JSONL) or a folder of them.

    Parameters
    ----------
    path : str or Path
        A file, or a folder whose event files are read in name order and combined.
    mapping : ColumnMapping, optional
        Source column names and defaults; the default expects the schema's own names.
    validate : bool
        Check every row against the ``Event`` model (about 50k rows/s). With False, only
        timestamps and values are checked, for trusted bulk loads.

    Returns
    -------
    Dataset
        ``events`` in EVENT_COLUMNS form; ``items`` and ``users`` are empty (an events
        file carries no catalog); ``quarantined`` holds the rejected source rows.

    Raises
    ------
    ValueError
        If a file type is unsupported or user, item or timestamp columns are missing.
    """
    path = Path(path)
    mapping = mapping or ColumnMapping()
    files = [path]
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in EVENT_FILE_SUFFIXES and not p.name.startswith(".")
        )
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
        items=empty_frame(ITEM_DTYPES),
        users=empty_frame(USER_DTYPES),
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

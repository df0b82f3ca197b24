"""An item catalog or a user table beside the events: ``items.*`` and ``users.*`` files.

A folder of event files may hold ``items.csv`` (or ``.parquet``, ``.jsonl``) with
``item_id`` and any of ``title``, ``categories`` (a list, or text separated by ``|``),
``price``, ``in_stock``, ``created_at``, and ``users.csv`` with ``user_id`` and any of ``age``,
``gender``, ``occupation``, ``region``. Ids are read as text (``007`` stays ``007``); columns
that are absent are unknown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.events.schema import ITEM_COLUMNS, ITEM_DTYPES, USER_COLUMNS, USER_DTYPES

#: File stems that are tables, not events, in a folder of event files.
TABLE_STEMS = ("items", "users")


def table_file(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """``folder/stem.<suffix>`` for the first suffix that exists."""
    for suffix in suffixes:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _read(path: Path, key: str) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame = frame.replace("", None)
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    if key not in frame.columns:
        raise ValueError(f"{path} lacks column {key!r}; it has {list(frame.columns)}")
    ids = frame[key]
    if pd.api.types.is_float_dtype(ids) and (ids.dropna() % 1 == 0).all():
        ids = ids.astype("Int64")
    frame[key] = ids.astype(str)
    return frame.drop_duplicates(key, keep="last").reset_index(drop=True)


def _categories(value: object) -> list[str]:
    if isinstance(value, list | tuple | np.ndarray):
        return [str(c) for c in value if str(c).strip()]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [c.strip() for c in str(value).split("|") if c.strip()]


def read_items(path: Path) -> pd.DataFrame:
    """The catalog in ``path`` (``ITEM_COLUMNS``, schema dtypes)."""
    raw = _read(path, "item_id")
    out = pd.DataFrame({"item_id": raw["item_id"].to_numpy(dtype=object)})
    out["title"] = raw["title"].astype(object).to_numpy() if "title" in raw else None
    out["categories"] = [_categories(v) for v in raw.get("categories", [None] * len(raw))]
    out["price"] = pd.to_numeric(raw.get("price"), errors="coerce") if "price" in raw else np.nan
    stock = raw.get("in_stock")
    out["in_stock"] = True if stock is None else ~stock.astype(str).str.lower().isin(
        ["0", "false", "no", "n", "f"])
    created = raw.get("created_at")
    out["created_at"] = (pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
                         if created is None
                         else pd.to_datetime(created, utc=True, errors="coerce", format="mixed"))
    return out[ITEM_COLUMNS].astype(ITEM_DTYPES)


def read_users(path: Path) -> pd.DataFrame:
    """The user table in ``path`` (``USER_COLUMNS``, schema dtypes)."""
    raw = _read(path, "user_id").reindex(columns=USER_COLUMNS)
    raw["age"] = pd.to_numeric(raw["age"], errors="coerce").round().astype("Int64")
    for column in ("gender", "occupation", "region"):
        raw[column] = raw[column].astype(object).where(raw[column].notna(), None)
    return raw.astype(USER_DTYPES)

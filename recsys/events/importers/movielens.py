"""MovieLens importers: ml-100k (``u.data``), ml-1m and ml-10m (``::``-separated ``.dat``),
ml-latest / 20m / 25m (``ratings.csv`` + ``movies.csv``).

Ratings become ``rate`` events built with vectorised pandas/pyarrow code, because ml-25m has
25 million rows.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.events.importers.dataset import Dataset
from recsys.events.schema import (
    EVENT_COLUMNS,
    ITEM_COLUMNS,
    RATING_MAX,
    RATING_MIN,
    USER_COLUMNS,
    USER_DTYPES,
)

logger = logging.getLogger(__name__)

# Index = occupation code in ml-1m users.dat (see its README).
ML1M_OCCUPATIONS = (
    *("other", "academic/educator", "artist", "clerical/admin", "college/grad student"),
    *("customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker"),
    *("K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist"),
    *("self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer"),
)
_LATIN1 = {"encoding": "latin-1", "quoting": csv.QUOTE_NONE, "keep_default_na": False}
_NO_GENRE = {"unknown", "(no genres listed)"}


def load_movielens(path: str | Path) -> Dataset:
    """Load ml-100k, ml-1m (also ml-10m) or ml-latest/20m/25m, detected from the file names.

    Every rating becomes a ``rate`` event with ``value`` = rating and event id
    ``ml-<user>-<item>-<timestamp>``, in file order; ratings outside [0.5, 5] are quarantined.
    """
    path = Path(path)
    kind = movielens_kind(path)
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
            "rec_id": None,
            "position": pd.array([pd.NA] * len(ratings), dtype="Int64"),
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


def movielens_kind(path: Path) -> str | None:
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

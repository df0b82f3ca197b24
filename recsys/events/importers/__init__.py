"""Load external data (MovieLens, generic event files) into the :mod:`recsys.events.schema` frames.

:func:`load_dataset` picks the importer: :mod:`~recsys.events.importers.movielens` or
:mod:`~recsys.events.importers.event_files`.
"""

from __future__ import annotations

from pathlib import Path

from recsys.events.catalog import complete_catalog, complete_users
from recsys.events.importers.dataset import Dataset
from recsys.events.importers.event_files import (
    EVENT_FILE_SUFFIXES,
    ColumnMapping,
    load_events_file,
)
from recsys.events.importers.movielens import load_movielens, movielens_kind

__all__ = ["EVENT_FILE_SUFFIXES", "FORMATS", "ColumnMapping", "Dataset", "load_dataset",
           "load_events_file", "load_movielens"]

FORMATS = ("auto", "movielens", "events")


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
        See :func:`load_movielens` and :func:`load_events_file`; ``items`` and ``users``
        hold every item and user of the events (rows the source lacks are derived from the
        events, :mod:`recsys.events.catalog`).
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if not path.exists():
        raise FileNotFoundError(path)
    if fmt == "movielens" or (fmt == "auto" and path.is_dir() and movielens_kind(path)):
        data = load_movielens(path)
    else:
        data = load_events_file(path)
    data.items = complete_catalog(data.items, data.events)
    data.users = complete_users(data.users, data.events)
    return data

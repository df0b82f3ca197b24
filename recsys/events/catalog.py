"""The catalog and the user table as the events imply them, for data that ships without them.

Most event files carry no item catalog: every item a user touched is still an item to
recommend, with features from its events alone. :func:`complete_catalog` adds a row for each
item the events name that the catalog lacks (no title or categories, unknown price, in stock,
created at its first event), :func:`complete_users` one for each user (unknown
demographics). Both keep the given rows as they are and return the schema's dtypes, so the
offline feature tables, the ranker and the service see the same items whatever the source.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from recsys.events.schema import ITEM_COLUMNS, ITEM_DTYPES, USER_COLUMNS, USER_DTYPES, empty_frame

logger = logging.getLogger(__name__)


def _typed(frame: pd.DataFrame | None, columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    if frame is None or frame.empty:
        return empty_frame(dtypes)
    out = frame.reindex(columns=columns)
    return out.astype({c: d for c, d in dtypes.items() if str(out[c].dtype) != d})


def complete_catalog(items: pd.DataFrame | None, events: pd.DataFrame) -> pd.DataFrame:
    """``items`` plus a row for every item of ``events`` it lacks.

    Parameters
    ----------
    items
        The catalog (``ITEM_COLUMNS``), possibly empty or None.
    events
        Events with ``item_id`` and ``timestamp``.

    Returns
    -------
    pd.DataFrame
        The catalog's rows first, then the added items in order of first event; an added
        item has no title, no categories, price NaN, ``in_stock`` True and ``created_at`` =
        its first event.
    """
    catalog = _typed(items, ITEM_COLUMNS, ITEM_DTYPES)
    if events.empty:
        return catalog
    first = events.groupby("item_id", sort=False)["timestamp"].min()
    missing = first[~first.index.isin(catalog["item_id"])].sort_values(kind="stable")
    if missing.empty:
        return catalog
    added = pd.DataFrame({
        "item_id": missing.index.astype(str).to_numpy(dtype=object),
        "title": None,
        "categories": [[] for _ in range(len(missing))],
        "price": np.nan,
        "in_stock": True,
        "created_at": pd.to_datetime(missing.to_numpy(), utc=True),
    })
    logger.info("catalog: %d items from the events beside %d given", len(added), len(catalog))
    frames = [frame for frame in (catalog, added.astype(ITEM_DTYPES)) if not frame.empty]
    return pd.concat(frames, ignore_index=True)[ITEM_COLUMNS]


def complete_users(users: pd.DataFrame | None, events: pd.DataFrame) -> pd.DataFrame:
    """``users`` plus a row (unknown demographics) for every user of ``events`` it lacks."""
    table = _typed(users, USER_COLUMNS, USER_DTYPES)
    ids = pd.unique(events["user_id"]) if not events.empty else np.array([], dtype=object)
    missing = ids[~pd.Index(ids).isin(table["user_id"])]
    if not len(missing):
        return table
    added = pd.DataFrame({"user_id": missing.astype(str)}).reindex(columns=USER_COLUMNS)
    frames = [frame for frame in (table, added.astype(USER_DTYPES)) if not frame.empty]
    return pd.concat(frames, ignore_index=True)

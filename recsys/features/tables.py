"""Offline feature tables for Feast, computed from validated events and the catalog.

Each table holds one row per entity and UTC day, stamped ``event_timestamp`` = the end of that
day (the moment its values become known), so Feast's point-in-time join never reads a value
from the future. Users get a row for every day within 30 days of their last event (the
longest window), plus the day their windows empty; items get a row on the first day they exist,
weekly after it and on every day their windows change.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from recsys.events.catalog import complete_catalog
from recsys.features.context import DAYPARTS, DEVICES, daypart_of, device_codes, event_devices
from recsys.features.interactions import event_weights
from recsys.features.names import (
    CATEGORY_IDS,
    RECENT_COUNT,
    RECENT_ITEMS,
    SEEN_ITEMS,
    USER_ACTIVITY,
    USER_HISTORY,
    USER_RECENT,
    short_name,
)

logger = logging.getLogger(__name__)

#: Longest ``user_history.seen_items`` list (most recent first).
SEEN_ITEMS_CAP = 500
#: Longest ``user_recent.recent_items`` list, in the daily table and in every online push.
RECENT_ITEMS_CAP = 20


def merge_recent(recent: list[str], new_items: list[str], cap: int) -> list[str]:
    """A most-recent-first list of distinct items after ``new_items`` (in time order).

    Each new item moves to the front (once, however often it occurs); the list keeps ``cap``
    items. The daily tables and the real-time push both update ``recent_items`` with it.
    """
    history = dict.fromkeys(reversed(recent))  # oldest first, so the newest is inserted last
    for item in new_items:
        history.pop(item, None)
        history[item] = None
    return list(history)[::-1][:cap]


def category_vocabulary(items: pd.DataFrame) -> list[str]:
    """Sorted distinct categories of the catalog: the index space of category features."""
    return sorted({c for cats in items["categories"] for c in cats})


def _window(daily: np.ndarray, days: int) -> np.ndarray:
    """Trailing sums over ``days`` days (inclusive) along axis 1 of an entity x day matrix."""
    cum = np.cumsum(daily, axis=1)
    shifted = np.zeros_like(cum)
    shifted[:, days:] = cum[:, :-days]
    return cum - shifted


def _prepare(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Events with weights and day indices, and the end-of-day stamp of each day."""
    if events.empty:
        raise ValueError("no events to compute features from")
    days = pd.date_range(
        events["timestamp"].min().floor("D"), events["timestamp"].max().floor("D"), freq="D"
    )
    ev = events[["user_id", "item_id", "event_type", "value", "timestamp"]].copy()
    ev["weight"] = event_weights(events)
    ev["day"] = ((ev["timestamp"].dt.floor("D") - days[0]) // pd.Timedelta(days=1)).astype(int)
    ev["daypart"] = daypart_of(ev["timestamp"].dt.hour.to_numpy())
    ev["device"] = (device_codes(event_devices(events["context"])) if "context" in events
                    else np.nan)
    logger.info("features over %d days, %d events", len(days), len(ev))
    return ev, days + pd.Timedelta(days=1)


def build_user_tables(events: pd.DataFrame, items: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``user_activity``, ``user_history`` and ``user_recent`` over the days events span.

    Parameters
    ----------
    events
        Validated events (``EVENT_COLUMNS`` form, UTC timestamps).
    items
        The catalog (``item_id``, ``categories``, ``price``, ``in_stock``, ``created_at``);
        items of the events it lacks are added (:func:`recsys.events.catalog.complete_catalog`).
    """
    ev, stamps = _prepare(events)
    items = complete_catalog(items, events)
    return {
        USER_ACTIVITY: _user_activity(ev, items, category_vocabulary(items), stamps),
        USER_HISTORY: _user_lists(ev, stamps, short_name(SEEN_ITEMS), SEEN_ITEMS_CAP),
        USER_RECENT: _user_lists(ev, stamps, short_name(RECENT_ITEMS), RECENT_ITEMS_CAP),
    }


def build_item_table(events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """``item_stats``: one row per item and day it exists (items of the events the catalog
    lacks included, :func:`recsys.events.catalog.complete_catalog`)."""
    ev, stamps = _prepare(events)
    items = complete_catalog(items, events)
    return _item_stats(ev, items, category_vocabulary(items), stamps)


def _daily_matrix(codes: np.ndarray, day: np.ndarray, n: int, n_days: int,
                  values: np.ndarray | None = None) -> np.ndarray:
    out = np.zeros((n, n_days), dtype=np.float64)
    np.add.at(out, (codes, day), 1.0 if values is None else values)
    return out


def _user_activity(ev: pd.DataFrame, items: pd.DataFrame, vocab: list[str],
                   stamps: pd.DatetimeIndex) -> pd.DataFrame:
    users, ucode = np.unique(ev["user_id"].to_numpy(), return_inverse=True)
    n_days = len(stamps)
    day = ev["day"].to_numpy()
    counts = _daily_matrix(ucode, day, len(users), n_days)
    e7, e30 = _window(counts, 7), _window(counts, 30)
    total = np.cumsum(counts, axis=1)
    purchases = _daily_matrix(ucode, day, len(users), n_days,
                              (ev["event_type"] == "purchase").to_numpy(float))
    is_rate = (ev["event_type"] == "rate").to_numpy()
    rating_sum = np.cumsum(_daily_matrix(ucode[is_rate], day[is_rate], len(users), n_days,
                                         ev["value"].to_numpy(float)[is_rate]), axis=1)
    rating_n = np.cumsum(_daily_matrix(ucode[is_rate], day[is_rate], len(users), n_days), axis=1)
    # Day index of the last event so far, per user and day (-1 before the first).
    active = np.where(counts > 0, np.arange(n_days)[None, :], -1)
    last = np.maximum.accumulate(active, axis=1)
    prev30 = np.zeros_like(e30)
    prev30[:, 1:] = e30[:, :-1]
    emit = (e30 > 0) | (prev30 > 0)
    u_idx, d_idx = np.nonzero(emit)

    # Category affinity: cumulative weighted category counts, normalised per row.
    cat_index = {c: i for i, c in enumerate(vocab)}
    item_cats = items.set_index("item_id")["categories"]
    ev_cats = ev["item_id"].map(item_cats)
    rows, cols, vals = [], [], []
    for r, (cats, w) in enumerate(zip(ev_cats, ev["weight"].to_numpy(), strict=True)):
        if isinstance(cats, (list, np.ndarray)) and len(cats):
            for c in cats:
                rows.append(r)
                cols.append(cat_index[c])
                vals.append(w / len(cats))
    aff_daily = np.zeros((len(users), n_days, max(len(vocab), 1)), dtype=np.float32)
    np.add.at(aff_daily, (ucode[rows], day[rows], np.asarray(cols, dtype=int)), vals)
    aff = np.cumsum(aff_daily, axis=1)[u_idx, d_idx]
    aff /= np.maximum(aff.sum(axis=1, keepdims=True), 1e-9)

    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rating = rating_sum / rating_n
    return pd.DataFrame({
        "user_id": users[u_idx],
        "event_timestamp": stamps[d_idx],
        "events_7d": e7[u_idx, d_idx].astype(np.float32),
        "events_30d": e30[u_idx, d_idx].astype(np.float32),
        "events_total": total[u_idx, d_idx].astype(np.float32),
        "purchases_30d": _window(purchases, 30)[u_idx, d_idx].astype(np.float32),
        "mean_rating": mean_rating[u_idx, d_idx].astype(np.float32),
        "days_since_last": (d_idx - last[u_idx, d_idx]).astype(np.float32),
        "category_affinity": list(aff.astype(np.float32)),
    })


def _user_lists(ev: pd.DataFrame, stamps: pd.DatetimeIndex, column: str, cap: int) -> pd.DataFrame:
    """Distinct items per user, most recent first, as of the end of each active day."""
    ordered = ev.sort_values(["user_id", "timestamp"], kind="stable")
    users, days = ordered["user_id"].to_numpy(), ordered["day"].to_numpy()
    # One segment per (user, active day): within a user, time order is day order.
    new_user = np.r_[True, users[1:] != users[:-1]]
    starts = np.flatnonzero(new_user | np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], len(users)]
    items = ordered["item_id"].tolist()
    lists: list[list[str]] = []
    latest: list[str] = []
    for start, end, fresh in zip(starts.tolist(), ends.tolist(), new_user[starts].tolist(),
                                 strict=True):
        latest = merge_recent([] if fresh else latest, items[start:end], cap)
        lists.append(latest)
    frame = pd.DataFrame({"user_id": users[starts], "event_timestamp": stamps[days[starts]],
                          column: lists})
    if column == short_name(RECENT_ITEMS):
        frame[short_name(RECENT_COUNT)] = np.int64(0)
    return frame


#: Days after an item's active day on which its windows change (7-day window, the 7 days
#: before it for the trend, 30-day window); with the weekly rows, the days an item gets a row.
_WINDOW_EDGES = (7, 14, 30)


def _item_row_days(active: np.ndarray, exists: np.ndarray) -> np.ndarray:
    """Days an item gets a row: its first day, every 7th day after it (``age_days`` is then
    at most 6 days stale) and every day one of its windows changes. Between them the latest
    row (Feast's point-in-time answer) holds the same values, so years of history cost rows
    per week, not per day."""
    changed = active.copy()
    for lag in _WINDOW_EDGES:
        changed[:, lag:] |= active[:, :-lag]
    first = np.argmax(exists, axis=1)
    weekly = (np.arange(active.shape[1])[None, :] - first[:, None]) % 7 == 0
    return changed | weekly


def _item_stats(ev: pd.DataFrame, items: pd.DataFrame, vocab: list[str],
                stamps: pd.DatetimeIndex) -> pd.DataFrame:
    catalog = items.reset_index(drop=True)
    n_items, n_days = len(catalog), len(stamps)
    code_of = pd.Series(np.arange(n_items), index=catalog["item_id"])
    known = ev["item_id"].isin(code_of.index).to_numpy()
    e = ev[known]
    icode = code_of.loc[e["item_id"]].to_numpy()
    day = e["day"].to_numpy()
    # One count per (user, item, day): popularity counts user-days, not repeated clicks.
    pairs = pd.DataFrame({"u": e["user_id"].to_numpy(), "i": icode, "d": day}).drop_duplicates()
    daily = _daily_matrix(pairs["i"].to_numpy(), pairs["d"].to_numpy(), n_items, n_days)
    p7 = _window(daily, 7)
    prev7 = np.zeros_like(p7)
    prev7[:, 7:] = p7[:, :-7]
    is_rate = (e["event_type"] == "rate").to_numpy()
    r_sum = np.cumsum(_daily_matrix(icode[is_rate], day[is_rate], n_items, n_days,
                                    e["value"].to_numpy(float)[is_rate]), axis=1)
    r_n = np.cumsum(_daily_matrix(icode[is_rate], day[is_rate], n_items, n_days), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rating = r_sum / r_n

    # Nanoseconds as integers: aware timestamps would subtract as Python objects, one by one.
    created = pd.DatetimeIndex(pd.to_datetime(catalog["created_at"], utc=True))
    created_ns = np.where(created.isna(), np.nan, created.asi8.astype(np.float64))
    age = (stamps.asi8.astype(np.float64)[None, :] - created_ns[:, None]) / 86_400e9
    exists = np.isnan(age) | (age >= 0)
    i_idx, d_idx = np.nonzero(exists & _item_row_days(daily > 0, exists))
    cat_index = {c: i for i, c in enumerate(vocab)}
    cat_ids = [np.asarray([cat_index[c] for c in cats], dtype=np.int64)
               for cats in catalog["categories"]]
    shares = _context_shares(e, icode, (i_idx, d_idx), n_items, n_days)
    return pd.DataFrame({
        "item_id": catalog["item_id"].to_numpy()[i_idx],
        "event_timestamp": stamps[d_idx],
        "popularity_7d": p7[i_idx, d_idx].astype(np.float32),
        "popularity_30d": _window(daily, 30)[i_idx, d_idx].astype(np.float32),
        "popularity_total": np.cumsum(daily, axis=1)[i_idx, d_idx].astype(np.float32),
        "trend": ((p7 + 1.0) / (prev7 + 1.0))[i_idx, d_idx].astype(np.float32),
        "mean_rating": mean_rating[i_idx, d_idx].astype(np.float32),
        "price": catalog["price"].to_numpy(dtype=np.float32)[i_idx],
        "in_stock": catalog["in_stock"].to_numpy(dtype=np.int64)[i_idx],
        "age_days": np.asarray(age, dtype=np.float32)[i_idx, d_idx],
        short_name(CATEGORY_IDS): [cat_ids[i] for i in i_idx],
        **shares,
    })


def _context_shares(e: pd.DataFrame, icode: np.ndarray, at: tuple[np.ndarray, np.ndarray],
                    n_items: int, n_days: int) -> dict[str, np.ndarray]:
    """``share_<daypart>`` and ``share_<device>`` of the rows ``at``: each item's events so
    far in each part of the day (of those with a known device, on each device), smoothed by
    one event per class so that an item without events has the even share."""
    day = e["day"].to_numpy()
    out: dict[str, np.ndarray] = {}
    for classes, names in ((e["daypart"].to_numpy(), DAYPARTS),
                           (np.nan_to_num(e["device"].to_numpy(float), nan=-1), DEVICES)):
        counts = []
        for k in range(len(names)):  # one item x day matrix at a time
            mine = classes == k
            cum = np.cumsum(_daily_matrix(icode[mine], day[mine], n_items, n_days), axis=1)
            counts.append(cum[at])
        total = np.sum(counts, axis=0)
        for name, count in zip(names, counts, strict=True):
            out[f"share_{name}"] = ((count + 1.0) / (total + len(names))).astype(np.float32)
    return out

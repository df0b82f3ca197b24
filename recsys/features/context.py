"""The context of a request or an event: time of day, day of week and device.

One definition, :func:`context_columns`, turns timestamps and device names into the ranker's
context inputs; the batch side reads them from events (each event's UTC timestamp and the
``device`` of its JSON ``context``: :func:`event_devices`), the request side from the
request's ``context`` (:func:`request_context`: the same hour, weekday and device codes for
one moment, without pandas; a parity test pins the two together).
Items get the matching profile from events: the share of their events in each part of the day
and on each device (``item_stats.share_*``, written by :mod:`recsys.features.tables`).

Hours are UTC: events carry UTC timestamps, and a client that knows better sends ``hour``
(and ``weekday``) in the request's context.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pandas as pd

#: Parts of the day by hour: [0, 6) night, [6, 12) morning, [12, 18) afternoon, [18, 24) evening.
DAYPARTS = ("night", "morning", "afternoon", "evening")
#: Devices the ranker tells apart (any other name counts as unknown).
DEVICES = ("mobile", "desktop", "tablet", "tv")
CONTEXT_HOUR, CONTEXT_WEEKDAY, CONTEXT_DEVICE = "context_hour", "context_weekday", "context_device"
CONTEXT_FEATURES = (CONTEXT_HOUR, CONTEXT_WEEKDAY, CONTEXT_DEVICE)

_DEVICE_CODE = {name: float(i) for i, name in enumerate(DEVICES)}


def daypart_of(hour: np.ndarray) -> np.ndarray:
    """Index into :data:`DAYPARTS` of each hour (0-23; -1 for NaN)."""
    hour = np.asarray(hour, dtype=np.float64)
    return np.where(np.isnan(hour), -1, np.floor(np.nan_to_num(hour) / 6)).astype(np.int64)


def device_codes(devices: pd.Series | list[object]) -> np.ndarray:
    """Index into :data:`DEVICES` of each device name, as float (NaN: missing or unknown)."""
    names = pd.Series(devices, dtype=object).astype(str).str.strip().str.lower()
    return names.map(_DEVICE_CODE).to_numpy(dtype=np.float64, na_value=np.nan)


def event_devices(context: pd.Series) -> pd.Series:
    """The ``device`` of each event's JSON ``context`` text (None where it has none)."""
    text = context.astype("string")
    found = text.str.extract(r'"device"\s*:\s*"([^"]*)"', expand=False)
    return found.astype(object).where(found.notna(), None)


def context_columns(timestamps: pd.Series, devices: pd.Series | list[object]
                    ) -> dict[str, np.ndarray]:
    """The ranker's context inputs of moments (UTC timestamps) on ``devices``.

    ``context_hour`` is the hour of the day (0 to 23), ``context_weekday`` 0 (Monday) to 6,
    ``context_device`` the index in :data:`DEVICES` (NaN: unknown).
    """
    stamps = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    return {
        CONTEXT_HOUR: np.asarray(stamps.hour, dtype=np.float32),
        CONTEXT_WEEKDAY: np.asarray(stamps.weekday, dtype=np.float32),
        CONTEXT_DEVICE: device_codes(devices).astype(np.float32),
    }


def request_context(context: Mapping[str, object], now: datetime | None = None
                    ) -> dict[str, float]:
    """The context inputs of one request: its ``context`` (``device``; ``timestamp`` as ISO
    text, else the time of the request ``now``; ``hour`` and ``weekday`` override).

    The same values as :func:`context_columns` of that moment and device, computed without
    pandas (a few microseconds on the request path).
    """
    moment = now or datetime.now(UTC)
    stamp = context.get("timestamp")
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            pass
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    device = context.get("device")
    values = {
        CONTEXT_HOUR: float(moment.hour),
        CONTEXT_WEEKDAY: float(moment.weekday()),
        CONTEXT_DEVICE: (_DEVICE_CODE.get(str(device).strip().lower(), np.nan)
                         if device is not None else np.nan),
    }
    for name, key, top in ((CONTEXT_HOUR, "hour", 24), (CONTEXT_WEEKDAY, "weekday", 7)):
        given = context.get(key)
        if isinstance(given, int | float) and not isinstance(given, bool) and 0 <= given < top:
            values[name] = float(int(given))
    return values


def cache_part(values: Mapping[str, float]) -> str:
    """What of a request's context its cached list depends on (the hour, weekday, device)."""
    return ":".join("-" if v != v else str(int(v)) for v in values.values())

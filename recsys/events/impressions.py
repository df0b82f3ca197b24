"""Impressions: the lists the service showed, and the outcomes attributed to them.

An impression is one served list: its ``rec_id``, the user, the items with their positions
and scores, the model version, the experiment and variant, the fallback flag, the latency
and the time. :class:`ImpressionLog` keeps them like the event log keeps events: JSON lines
appended (fsync'd) to a per-process segment of each UTC day under ``root/date=YYYY-MM-DD/``;
readers only read. The service writes it itself in the local profile; with the shared event
stream the impressions travel in the stream like events and the stream consumers write it
(a redelivered batch is read once: :meth:`ImpressionLog.read` keeps one list per
``rec_id``). :func:`attribute` ties each outcome event to the impression that led to it: by
the event's ``rec_id`` when it carries one, else to the latest impression of that item for
that user within a window before the event.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from recsys.events.event_log import _append_durably

logger = logging.getLogger(__name__)

#: One row per shown item (the frame form of impressions).
IMPRESSION_COLUMNS = ["rec_id", "user_id", "item_id", "position", "score", "model_version",
                      "experiment_id", "variant", "fallback", "latency_ms", "error", "timestamp"]
#: Keys every stored impression has (non-empty).
REQUIRED = ("rec_id", "user_id", "timestamp")


def impression_record(rec_id: str, at: float, body: Mapping, latency_ms: float) -> dict:
    """The stored form of one served list from the response body ``body`` (a dict of
    :class:`serving.schemas.RecommendResponse` fields) served at ``at`` (epoch seconds)."""
    return {
        "rec_id": rec_id, "user_id": body["user_id"],
        "items": [[item["item_id"], float(item["score"])] for item in body.get("items", ())],
        "model_version": body.get("model_version"), "experiment_id": body.get("experiment_id"),
        "variant": body.get("variant"), "fallback": bool(body.get("fallback")),
        "latency_ms": round(latency_ms, 3), "error": bool(body.get("error")),
        "timestamp": datetime.fromtimestamp(at, tz=UTC).isoformat(),
    }


def impression_from_json(payload: bytes | str) -> dict:
    """The :func:`impression_record` dict of its JSON form; ValueError when it is not one."""
    record = json.loads(payload)
    if not isinstance(record, dict) or not all(record.get(key) for key in REQUIRED):
        raise ValueError(f"not an impression (needs {', '.join(REQUIRED)}): {payload[:200]!r}")
    if not isinstance(record.get("items", []), list):
        raise ValueError(f"impression {record['rec_id']}: items is not a list")
    datetime.fromisoformat(str(record["timestamp"]))
    return record


class ImpressionLog:
    """Append-only impression log rooted at ``root`` (threads and processes may share it)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._started_ns = time.time_ns()

    def append(self, records: Sequence[Mapping]) -> None:
        """Append :func:`impression_record` dicts, durably (fsync) before returning."""
        by_day: dict[str, list[str]] = {}
        for record in records:
            by_day.setdefault(str(record["timestamp"])[:10], []).append(
                json.dumps(record, separators=(",", ":")) + "\n")
        with self._lock:
            for day, lines in sorted(by_day.items()):
                path = self.root / f"date={day}" / f"{os.getpid()}-{self._started_ns}.jsonl"
                _append_durably(path, "".join(lines).encode("utf-8"))

    def days(self) -> list[date]:
        if not self.root.is_dir():
            return []
        return sorted(date.fromisoformat(p.name[5:]) for p in self.root.glob("date=*")
                      if p.is_dir())

    def read(self, days: Iterable[date] | None = None) -> pd.DataFrame:
        """Impressions of ``days`` (default: all), one row per shown item (position from 0);
        a list that showed nothing keeps one row with ``item_id`` None (it still counts as
        an impression for latency, errors and fallbacks). A list logged twice (a stream
        batch redelivered to a consumer) is read once."""
        rows, seen = [], set()
        for day in self.days() if days is None else days:
            for path in sorted((self.root / f"date={day.isoformat()}").glob("*.jsonl")):
                lines = path.read_bytes().split(b"\n")
                for line in lines[:-1]:  # the last one may be mid-write
                    if line.strip():
                        record = json.loads(line)
                        if record["rec_id"] not in seen:
                            seen.add(record["rec_id"])
                            rows.extend(_rows(record))
        frame = pd.DataFrame(rows, columns=IMPRESSION_COLUMNS)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
        return frame.astype({"position": "Int64", "score": "float64", "latency_ms": "float64",
                             "fallback": "bool", "error": "bool"})


def _rows(record: dict) -> list[tuple]:
    head = (record["rec_id"], record["user_id"])
    tail = (record.get("model_version"), record.get("experiment_id"), record.get("variant"),
            record.get("fallback", False), record.get("latency_ms"), record.get("error", False),
            record["timestamp"])
    items = record.get("items") or [[None, None]]
    return [(*head, item, None if item is None else position, score, *tail)
            for position, (item, score) in enumerate(items)]


def attribute(events: pd.DataFrame, impressions: pd.DataFrame,
              window: timedelta = timedelta(hours=24)) -> pd.DataFrame:
    """``events`` with the impression each came from: ``rec_id``, ``position`` and the
    impression's ``experiment_id`` and ``variant`` (missing when none).

    An event that names a ``rec_id`` of a logged impression keeps it (its position is the
    item's place in that list unless the event says otherwise); any other event takes the
    latest impression of the same user and item at most ``window`` before it.
    """
    shown = impressions.dropna(subset=["item_id"])
    cols = ["rec_id", "user_id", "item_id", "position", "experiment_id", "variant", "timestamp"]
    shown = shown[cols].rename(columns={"timestamp": "shown_at"})
    out = events.copy().reset_index(drop=True)
    if "rec_id" not in out:
        out["rec_id"] = None
    given = out["rec_id"].notna() & out["rec_id"].isin(set(shown["rec_id"]))
    by_id = out[given].merge(shown.drop(columns=["user_id", "shown_at"]),
                             on=["rec_id", "item_id"], how="left", suffixes=("", "_shown"))
    by_id.index = out.index[given]
    rest = out[~given].drop(columns=["rec_id"]).sort_values("timestamp")
    rest["_row"] = rest.index
    found = pd.merge_asof(
        rest, shown.sort_values("shown_at"), left_on="timestamp", right_on="shown_at",
        by=["user_id", "item_id"], tolerance=pd.Timedelta(window), direction="backward",
        suffixes=("", "_shown"), allow_exact_matches=True,
    ).set_index("_row")
    result = out.copy()
    result["experiment_id"] = None
    result["variant"] = None
    for part in (by_id, found):
        if part.empty:
            continue
        index = part.index
        result.loc[index, "rec_id"] = part["rec_id"].to_numpy()
        result.loc[index, "experiment_id"] = part["experiment_id"].to_numpy()
        result.loc[index, "variant"] = part["variant"].to_numpy()
        own = part["position"] if "position" in part else pd.Series(pd.NA, index=index)
        shown_position = part.get("position_shown", own)
        result.loc[index, "position"] = own.fillna(shown_position).to_numpy()
    result["position"] = pd.array(result["position"], dtype="Int64") if len(result) else (
        result["position"].astype("Int64"))
    return result

"""The durable, append-only event log: one folder per UTC day, immutable segment files.

Layout::

    root/date=2024-05-01/1714557600000000000-1a2b3c4d.parquet   bulk append, written once
    root/date=2024-05-01/import-movielens.parquet                 named import (replaceable)
    root/date=2024-05-01/4242-1714557000123456789.jsonl           API appends of process 4242

Bulk appends write a new Parquet segment per day atomically (temporary name, fsync, then
``os.replace``); a named import replaces its own earlier segments, nothing else is ever
rewritten. API appends add JSON lines to the per-process segment of each day and fsync
before returning, so an acknowledged event is on disk. Readers (the Dagster ``raw_events``
asset, a sensor) only read, and names starting with "." are ignored.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.events.schema import (
    EVENT_COLUMNS,
    EVENT_DTYPES,
    OPTIONAL_EVENT_COLUMNS,
    Event,
    context_to_json,
    empty_frame,
)

logger = logging.getLogger(__name__)

SEGMENT_SUFFIXES = (".parquet", ".jsonl")
_DAY_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_SEGMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=-]{0,120}")
# Filesystems with coarse mtimes (down to 2 s) could hide a write made in the same tick as
# the newest one seen; holding the cursor back re-reports such days instead of missing them.
_MTIME_SLACK_SECONDS = 2.0


class EventLog:
    """Append-only event log rooted at ``root`` (safe for concurrent threads and processes).

    Parameters
    ----------
    root : Path
        Folder holding the ``date=YYYY-MM-DD`` partitions; created on first append.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._started_ns = time.time_ns()

    def append(self, frame: pd.DataFrame, segment: str | None = None) -> list[Path]:
        """Write the events of ``frame`` as one new Parquet segment per UTC day.

        Parameters
        ----------
        frame : pandas.DataFrame
            Events in EVENT_COLUMNS form with a timezone-aware ``timestamp`` column.
        segment : str, optional
            A stable name (e.g. ``"import-movielens"``) instead of a unique one. Appending
            again under the same name replaces that import everywhere: its segment is
            rewritten on the days ``frame`` covers and deleted from the other days, so
            re-imports are idempotent.

        Returns
        -------
        list of Path
            The segments written, in day order.
        """
        if segment is not None and not _SEGMENT_NAME.fullmatch(segment):
            raise ValueError(f"segment name {segment!r} must match {_SEGMENT_NAME.pattern}")
        if not set(EVENT_COLUMNS) - set(OPTIONAL_EVENT_COLUMNS) <= set(frame.columns) <= set(
                EVENT_COLUMNS):
            raise ValueError(f"expected exactly the columns {EVENT_COLUMNS} (the last two "
                             f"optional), got {list(frame)}")
        if not isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype):
            raise ValueError(
                f"timestamp must be timezone-aware datetime64, got {frame['timestamp'].dtype}; "
                "run validation.validate_events first"
            )
        frame = frame.reindex(columns=EVENT_COLUMNS).astype(EVENT_DTYPES)
        frame["timestamp"] = frame["timestamp"].dt.tz_convert("UTC")
        written = []
        with self._lock:
            for day, part in frame.groupby(frame["timestamp"].dt.floor("D"), sort=True):
                name = segment or f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
                written.append(self._write_parquet(day.date(), part.reset_index(drop=True), name))
            if segment is not None:
                for stale in set(self.root.glob(f"date=*/{segment}.parquet")) - set(written):
                    stale.unlink()
                    _fsync_dir(stale.parent)
                    logger.info("removed %s, replaced by a re-import", stale)
        return written

    def append_records(self, events: Sequence[Event]) -> list[Path]:
        """Append validated events as JSON lines, durably (fsync) before returning.

        Events of several days go to each day's segment; if a later day fails the earlier
        days stay written, which is harmless because ``event_id`` makes retries idempotent.

        Returns
        -------
        list of Path
            The segments appended to, in day order.
        """
        by_day: dict[date, list[str]] = {}
        for event in events:
            by_day.setdefault(event.timestamp.date(), []).append(event.model_dump_json() + "\n")
        written = []
        with self._lock:
            for day, lines in sorted(by_day.items()):
                path = self.day_dir(day) / f"{os.getpid()}-{self._started_ns}.jsonl"
                _append_durably(path, "".join(lines).encode("utf-8"))
                written.append(path)
        return written

    def day_dir(self, day: date) -> Path:
        """The partition folder of one UTC day."""
        return self.root / f"date={day.isoformat()}"

    def days(self) -> list[date]:
        """UTC days that have at least one segment, ascending."""
        return [day for day in self._day_folders() if self.segments(day)]

    def segments(self, day: date) -> list[Path]:
        """Segment files of one day, by name (temporary files excluded)."""
        folder = self.day_dir(day)
        if not folder.is_dir():
            return []
        return sorted(
            path
            for path in folder.iterdir()
            if path.suffix in SEGMENT_SUFFIXES and not path.name.startswith(".")
        )

    def read_day(self, day: date) -> pd.DataFrame:
        """All events of one day in EVENT_COLUMNS form, ordered by timestamp.

        Values are kept as stored: segments written by this class are well typed, while a
        foreign segment with bad cells yields object columns for validation to quarantine.
        """
        frames = [_read_segment(path) for path in self.segments(day)]
        if not frames:
            return empty_frame(EVENT_DTYPES)
        out = pd.concat(frames, ignore_index=True)
        if isinstance(out["timestamp"].dtype, pd.DatetimeTZDtype):
            return out.sort_values("timestamp", kind="stable", ignore_index=True)
        # A segment with unparseable cells left raw values behind; text keeps the frame
        # storable as Parquet (no mixed-type columns) and validation parses it again.
        for column in ("timestamp", "value"):
            if out[column].dtype == object:
                out[column] = [_as_text(cell) for cell in out[column]]
        return out

    def changed_days_since(self, cursor: float) -> tuple[list[date], float]:
        """Days with a segment modified after ``cursor`` (an mtime), and the next cursor.

        Delivery is at least once: a day written in the last two seconds may be reported
        again on the next call, so consumers must be idempotent.
        """
        changed: set[date] = set()
        newest = cursor
        for day in self._day_folders():
            # The folder's own mtime reveals segments deleted by a re-import.
            for path in [self.day_dir(day), *self.segments(day)]:
                modified = path.stat().st_mtime
                if modified > cursor:
                    changed.add(day)
                    newest = max(newest, modified)
        next_cursor = max(cursor, min(newest, time.time() - _MTIME_SLACK_SECONDS))
        return sorted(changed), next_cursor

    def _day_folders(self) -> list[date]:
        if not self.root.is_dir():
            return []
        matches = (_DAY_DIR.match(child.name) for child in self.root.iterdir() if child.is_dir())
        return sorted(date.fromisoformat(match.group(1)) for match in matches if match)

    def _write_parquet(self, day: date, part: pd.DataFrame, name: str) -> Path:
        folder = self.day_dir(day)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{name}.parquet"
        temporary = folder / f".{final.name}.tmp"
        table = pa.Table.from_pandas(part, preserve_index=False)
        try:
            with open(temporary, "wb") as handle:
                pq.write_table(table, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_dir(folder)
        logger.debug("wrote %d events to %s", len(part), final)
        return final


def _as_text(cell: object) -> str | None:
    if cell is None or cell is pd.NaT or (isinstance(cell, float) and cell != cell):
        return None
    if isinstance(cell, datetime):
        return cell.isoformat()
    return str(cell)


def _append_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    with open(path, "ab") as handle:
        size = handle.tell()
        try:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            # Never leave a torn line that the next append would glue onto.
            handle.truncate(size)
            raise
    if created:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes a new directory entry durable on POSIX; Windows cannot open directories.
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_segment(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return _typed_position(pd.read_parquet(path).reindex(columns=EVENT_COLUMNS))
    lines = path.read_bytes().split(b"\n")
    if lines[-1].strip():
        # The last line of a live segment may be mid-write; it was not acknowledged yet.
        logger.warning("ignoring incomplete last line of %s", path)
    records = []
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: corrupt event log line ({exc.msg})") from exc
    frame = pd.DataFrame.from_records(records, columns=EVENT_COLUMNS)
    frame["context"] = [context_to_json(c) if isinstance(c, dict) else c for c in frame["context"]]
    timestamps = pd.to_datetime(frame["timestamp"], format="ISO8601", utc=True, errors="coerce")
    if timestamps.notna().sum() == frame["timestamp"].notna().sum():
        frame["timestamp"] = timestamps.dt.as_unit("ns")
    values = pd.to_numeric(frame["value"], errors="coerce")
    if values.notna().sum() == frame["value"].notna().sum():
        frame["value"] = values.astype("float64")
    return _typed_position(frame)


def _typed_position(frame: pd.DataFrame) -> pd.DataFrame:
    """``position`` as nullable integers, unless a bad cell must reach validation as is
    (segments written before the column existed have none: all missing)."""
    positions = pd.to_numeric(frame["position"], errors="coerce")
    if positions.notna().sum() == frame["position"].notna().sum() and (
            positions.dropna() % 1 == 0).all():
        frame["position"] = positions.astype("Int64")
    return frame

import json
import os
import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from recsys.events.event_log import EventLog
from recsys.events.schema import EVENT_COLUMNS, EVENT_DTYPES, Event
from recsys.events.synthetic import WorldConfig, generate_world
from recsys.events.validation import validate_events

END = datetime(2024, 5, 4, tzinfo=UTC)


def _event(n: int, when: datetime, **extra: object) -> Event:
    return Event(
        event_id=f"api-{n}",
        user_id=f"u{n % 7}",
        item_id=f"i{n % 11}",
        event_type="view",
        timestamp=when,
        **extra,
    )


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    world = generate_world(WorldConfig(n_users=60, n_items=40, days=3, end=END))
    return world.events


def test_bulk_append_round_trips_per_utc_day(tmp_path: Path, events: pd.DataFrame) -> None:
    log = EventLog(tmp_path)
    written = log.append(events)
    assert [p.parent.name for p in written] == [
        "date=2024-05-01",
        "date=2024-05-02",
        "date=2024-05-03",
    ]
    assert log.days() == [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
    for day in log.days():
        got = log.read_day(day)
        assert got.dtypes.astype(str).to_dict() == EVENT_DTYPES
        want = events[events["timestamp"].dt.date == day].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want)
    assert not list(tmp_path.rglob("*.tmp"))


def test_api_appends_are_on_disk_when_acknowledged(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    # 01:30 at +02:00 on May 2nd is 23:30 UTC on May 1st: partitions follow the UTC day.
    paris_summer = timezone(timedelta(hours=2))
    paths = log.append_records(
        [
            _event(1, datetime(2024, 5, 2, 1, 30, tzinfo=paris_summer)),
            _event(2, datetime(2024, 5, 2, 21, 30, tzinfo=UTC), context={"device": "tv"}),
        ]
    )
    assert [p.parent.name for p in paths] == ["date=2024-05-01", "date=2024-05-02"]
    assert paths[0].name == f"{os.getpid()}-{log._started_ns}.jsonl"
    line = json.loads(paths[1].read_text())
    assert line["event_id"] == "api-2" and line["context"] == {"device": "tv"}
    log.append_records([_event(3, datetime(2024, 5, 2, 22, tzinfo=UTC), value=2.5)])
    day = log.read_day(date(2024, 5, 2))
    assert day["event_id"].tolist() == ["api-2", "api-3"]
    assert day.dtypes.astype(str).to_dict() == EVENT_DTYPES
    assert day["context"].tolist() == ['{"device":"tv"}', "{}"]
    assert day["value"].isna().tolist() == [True, False]
    assert validate_events(day).quarantined.empty


def test_parquet_and_jsonl_segments_of_a_day_are_merged(
    tmp_path: Path, events: pd.DataFrame
) -> None:
    log = EventLog(tmp_path)
    day_two = events[events["timestamp"].dt.date == date(2024, 5, 2)]
    log.append(day_two)
    log.append_records([_event(1, datetime(2024, 5, 2, 0, 0, 0, 1, tzinfo=UTC))])
    merged = log.read_day(date(2024, 5, 2))
    assert len(merged) == len(day_two) + 1
    assert merged["event_id"].iloc[0] == "api-1"
    assert merged["timestamp"].is_monotonic_increasing
    assert {p.suffix for p in log.segments(date(2024, 5, 2))} == {".parquet", ".jsonl"}


def test_concurrent_appends_from_threads_lose_nothing(tmp_path: Path, events: pd.DataFrame) -> None:
    log = EventLog(tmp_path)
    start = datetime(2024, 5, 1, 12, tzinfo=UTC)

    def api_writer(worker: int) -> None:
        for batch in range(20):
            base = worker * 1000 + batch * 5
            log.append_records([_event(base + k, start + timedelta(hours=k * 7)) for k in range(5)])

    def bulk_writer(part: pd.DataFrame) -> None:
        log.append(part)

    threads = [threading.Thread(target=api_writer, args=(w,)) for w in range(6)]
    threads += [
        threading.Thread(target=bulk_writer, args=(p,)) for p in (events[::2], events[1::2])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = pd.concat([log.read_day(day) for day in log.days()], ignore_index=True)
    assert len(everything) == 6 * 20 * 5 + len(events)
    assert everything["event_id"].is_unique
    assert validate_events(everything).quarantined.empty


def test_torn_last_line_is_ignored_but_corruption_is_loud(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    [path] = log.append_records([_event(1, datetime(2024, 5, 1, tzinfo=UTC))])
    with path.open("ab") as handle:
        handle.write(b'{"event_id": "half-writ')
    assert log.read_day(date(2024, 5, 1))["event_id"].tolist() == ["api-1"]
    with path.open("ab") as handle:
        handle.write(b"\n")
    with pytest.raises(ValueError, match=r":2: corrupt event log line"):
        log.read_day(date(2024, 5, 1))


def test_foreign_segment_with_bad_cells_is_read_raw_for_validation(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    folder = log.day_dir(date(2024, 5, 1))
    folder.mkdir(parents=True)
    good = {
        "event_id": "a",
        "user_id": "u",
        "item_id": "i",
        "event_type": "view",
        "value": None,
        "timestamp": "2024-05-01T10:00:00Z",
        "context": {},
    }
    bad = {**good, "event_id": "b", "timestamp": "sometime"}
    (folder / "foreign.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    (folder / ".partial.parquet.tmp").write_bytes(b"ignored")
    log.append_records([_event(1, datetime(2024, 5, 1, 9, tzinfo=UTC))])
    raw = log.read_day(date(2024, 5, 1))
    assert raw["timestamp"].tolist() == [
        "2024-05-01T09:00:00+00:00",
        "2024-05-01T10:00:00Z",
        "sometime",
    ]
    raw.to_parquet(tmp_path / "raw.parquet")  # what the raw_events asset does with it
    result = validate_events(raw)
    assert result.valid["event_id"].tolist() == ["api-1", "a"]
    [reason] = result.quarantined["reason"]
    assert reason.startswith("timestamp: Input should be a valid datetime")
    assert [p.suffix for p in log.segments(date(2024, 5, 1))] == [".jsonl", ".jsonl"]


def _backdate(log: EventLog, when: float) -> None:
    for day in log.days():
        for path in [log.day_dir(day), *log.segments(day)]:
            os.utime(path, (when, when))


def test_changed_days_since_cursor(tmp_path: Path, events: pd.DataFrame) -> None:
    log = EventLog(tmp_path)
    assert log.changed_days_since(0.0) == ([], 0.0)
    log.append(events)
    past = time.time() - 600
    _backdate(log, past)
    days, cursor = log.changed_days_since(0.0)
    assert days == log.days() and cursor == pytest.approx(past)
    assert log.changed_days_since(cursor) == ([], cursor)
    log.append_records([_event(1, datetime(2024, 5, 3, 8, tzinfo=UTC))])
    days, newer = log.changed_days_since(cursor)
    assert days == [date(2024, 5, 3)] and newer >= cursor
    # Removing a segment (as a re-import does) marks its day as changed too.
    _backdate(log, past)
    log.segments(date(2024, 5, 2))[0].unlink()
    assert log.changed_days_since(past)[0] == [date(2024, 5, 2)]


def test_named_segments_make_reimports_idempotent(tmp_path: Path, events: pd.DataFrame) -> None:
    log = EventLog(tmp_path)
    log.append(events, segment="import-synthetic")
    log.append_records([_event(1, datetime(2024, 5, 1, 8, tzinfo=UTC))])
    log.append(events, segment="import-synthetic")
    assert sum(len(log.read_day(day)) for day in log.days()) == len(events) + 1
    # A re-import covering fewer days removes the import from the days it no longer has.
    last_day = events[events["timestamp"].dt.date == date(2024, 5, 3)]
    written = log.append(last_day, segment="import-synthetic")
    assert [p.name for p in written] == ["import-synthetic.parquet"]
    assert log.days() == [date(2024, 5, 1), date(2024, 5, 3)]
    assert log.read_day(date(2024, 5, 1))["event_id"].tolist() == ["api-1"]
    assert len(log.read_day(date(2024, 5, 3))) == len(last_day)
    with pytest.raises(ValueError, match="segment name"):
        log.append(events, segment="../escape")


def test_append_rejects_frames_that_are_not_event_frames(
    tmp_path: Path, events: pd.DataFrame
) -> None:
    log = EventLog(tmp_path)
    with pytest.raises(ValueError, match="expected exactly the columns"):
        log.append(events.drop(columns=["context"]))
    naive = events.assign(timestamp=events["timestamp"].dt.tz_localize(None))
    with pytest.raises(ValueError, match="timezone-aware"):
        log.append(naive)
    assert log.append(events.iloc[:0]) == [] and log.days() == []
    assert list(events.columns) == EVENT_COLUMNS

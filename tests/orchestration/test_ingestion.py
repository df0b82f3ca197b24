"""Imports keyed by their source: two files never replace each other, a re-import is
idempotent."""

import dagster as dg
import pandas as pd

from orchestration.defs.assets.ingestion import event_source
from orchestration.defs.resources import PlatformStorage
from recsys.events.event_log import EventLog


def events_file(path, day: str, n: int) -> str:  # noqa: ANN001
    pd.DataFrame({
        "event_id": [f"{day}-{i}" for i in range(n)], "user_id": [f"u{i}" for i in range(n)],
        "item_id": "i1", "event_type": "view",
        "timestamp": [f"{day}T10:00:{i:02d}Z" for i in range(n)],
    }).to_csv(path, index=False)
    return str(path)


def test_two_files_of_different_days_both_survive_whole(tmp_path) -> None:
    storage = PlatformStorage(data_dir=str(tmp_path / "data"))
    first = events_file(tmp_path / "a.csv", "2026-11-01", 3)
    second = events_file(tmp_path / "b.csv", "2026-11-02", 4)
    for path in (first, second, first):  # the last: the same file again
        result = dg.materialize(
            [event_source], resources={"storage": storage},
            run_config={"ops": {"event_source": {"config": {"kind": "events", "path": path}}}},
        )
        assert result.success
    log = EventLog(storage.settings.event_log_dir)
    logged = pd.concat([log.read_day(day) for day in log.days()])
    assert sorted(logged["event_id"]) == sorted(
        [f"2026-11-01-{i}" for i in range(3)] + [f"2026-11-02-{i}" for i in range(4)])


def test_an_event_retried_on_another_day_is_validated_once(tmp_path) -> None:
    from orchestration.defs.assets.ingestion import raw_events, validated_events
    from orchestration.defs.partitions import daily_partitions

    storage = PlatformStorage(data_dir=str(tmp_path / "data"))
    frame = pd.DataFrame({
        "event_id": ["once", "once", "other"], "user_id": ["u1", "u1", "u2"],
        "item_id": ["i1", "i1", "i2"], "event_type": "view", "value": float("nan"),
        "timestamp": pd.to_datetime(["2026-11-01T10:00Z", "2026-11-02T09:00Z",
                                     "2026-11-02T10:00Z"], utc=True),
        "context": "{}",
    })
    EventLog(storage.settings.event_log_dir).append(frame)
    assert "2026-11-01" in daily_partitions.get_partition_keys()
    for day in ("2026-11-02", "2026-11-01"):  # the later day first: the order must not matter
        result = dg.materialize([raw_events, validated_events], partition_key=day,
                                resources={"storage": storage})
        assert result.success
    valid = pd.read_parquet(storage.table_dir("validated_events"))
    assert sorted(valid["event_id"]) == ["once", "other"]
    quarantined = pd.read_parquet(storage.quarantine_dir() / "date=2026-11-01.parquet")
    assert quarantined["reason"].tolist() == ["duplicate event_id (accepted on another day)"]


def test_the_quarantine_share_counts_the_rows_of_both_tables(tmp_path) -> None:
    from orchestration.defs.asset_checks import quarantine_share
    from orchestration.defs.assets.ingestion import raw_events, validated_events

    storage = PlatformStorage(data_dir=str(tmp_path / "data"))
    frame = pd.DataFrame({
        "event_id": ["a", "b", "c", "d"], "user_id": ["u1", "u2", "u3", "u4"],
        "item_id": "i1", "event_type": ["view", "view", "view", "rate"],
        "value": [float("nan"), float("nan"), float("nan"), 9.0],  # a rating above 5
        "timestamp": pd.to_datetime(["2026-11-01T10:00Z"] * 4, utc=True), "context": "{}",
    })
    EventLog(storage.settings.event_log_dir).append(frame)
    result = dg.materialize([raw_events, validated_events, quarantine_share],
                            partition_key="2026-11-01", resources={"storage": storage})
    [check] = result.get_asset_check_evaluations()
    metadata = {key: value.value for key, value in check.metadata.items()}
    assert metadata == {"quarantined": 1, "valid": 3, "share": 0.25}
    assert not check.passed

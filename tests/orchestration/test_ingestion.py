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

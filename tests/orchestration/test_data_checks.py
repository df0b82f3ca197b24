"""The Great Expectations checks of the validated events: one suite run serves the checks of
one version of the files, a changed file is checked again."""

import pandas as pd

from orchestration.defs.asset_checks import _suite_result
from orchestration.defs.resources import PlatformStorage
from recsys.events.schema import EVENT_COLUMNS, EVENT_DTYPES


def test_the_suite_runs_again_only_when_the_validated_events_change(tmp_path) -> None:
    storage = PlatformStorage(data_dir=str(tmp_path / "data"))
    day = storage.table_dir("validated_events") / "date=2026-11-01"
    day.mkdir()
    rows = pd.DataFrame({
        "event_id": ["a", "b"], "user_id": ["u1", "u2"], "item_id": ["i1", "i2"],
        "event_type": ["view", "purchase"], "value": [float("nan"), 12.0],
        "timestamp": pd.to_datetime(["2026-11-01T10:00Z", "2026-11-01T11:00Z"], utc=True),
    }).reindex(columns=EVENT_COLUMNS).astype(EVENT_DTYPES)
    rows.to_parquet(day / "part.parquet", index=False)
    first, second = _suite_result(storage), _suite_result(storage)
    assert first.passed and second.passed
    assert (first.metadata["reused"].value, second.metadata["reused"].value) == (False, True)
    planted = rows.head(1).assign(event_id="c", event_type="purchase", value=-5.0)
    planted.to_parquet(day / "planted.parquet", index=False)
    third = _suite_result(storage)
    assert not third.passed and third.metadata["reused"].value is False
    assert "expect_column_values_to_be_between" in third.metadata["failed"].value

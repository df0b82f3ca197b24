"""The command that writes a generated events file of a chosen size."""

from pathlib import Path

import pandas as pd

from recsys.events.sample_files import main


def test_cli_writes_the_asked_number_of_funnel_events(tmp_path: Path) -> None:
    assert main(["--users", "300", "--items", "200", "--events", "2000", "--days", "20",
                 "--event-types", "many", "--out", str(tmp_path / "world")]) == 0
    events = pd.read_csv(tmp_path / "world" / "events.csv")
    assert len(events) == 2000
    assert {"view", "click"} <= set(events["event_type"])
    assert events["user_id"].nunique() <= 300 and events["item_id"].nunique() <= 200
    days = (events["timestamp"].max() - events["timestamp"].min()) / 86_400
    assert days <= 20
    assert not (tmp_path / "world" / "items.csv").exists()

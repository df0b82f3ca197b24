"""The impression log and the attribution of outcomes to impressions."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from recsys.events.impressions import (
    ImpressionLog,
    attribute,
    impression_from_json,
    impression_record,
)

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _body(user: str, items: list[str], variant: str | None = None) -> dict:
    return {"user_id": user, "items": [{"item_id": i, "score": 1.0 / (n + 1)}
                                       for n, i in enumerate(items)],
            "model_version": "3", "experiment_id": "exp" if variant else None,
            "variant": variant, "fallback": False}


def _log(tmp_path: Path) -> ImpressionLog:
    log = ImpressionLog(tmp_path)
    log.append([
        impression_record("r1", T0.timestamp(), _body("u1", ["a", "b", "c"], "control"), 4.0),
        impression_record("r2", (T0 + timedelta(hours=1)).timestamp(),
                          _body("u1", ["c", "a"], "treatment"), 6.5),
        impression_record("r3", (T0 + timedelta(days=1)).timestamp(), _body("u2", []), 1.0),
    ])
    return log


def test_impressions_round_trip_one_row_per_shown_item(tmp_path: Path) -> None:
    frame = _log(tmp_path).read()
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["date=2026-05-01", "date=2026-05-02"]
    assert frame["rec_id"].tolist() == ["r1", "r1", "r1", "r2", "r2", "r3"]
    assert frame["position"].tolist() == [0, 1, 2, 0, 1, pd.NA]
    assert frame.loc[3, "variant"] == "treatment" and frame.loc[3, "latency_ms"] == 6.5
    assert frame.loc[5, "item_id"] is None  # an empty list still counts as served
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_outcomes_attributed_by_rec_id_else_latest_impression_in_window(
        tmp_path: Path) -> None:
    impressions = _log(tmp_path).read()
    events = pd.DataFrame({
        "event_id": ["e1", "e2", "e3", "e4", "e5"],
        "user_id": ["u1", "u1", "u1", "u1", "u1"],
        "item_id": ["a", "a", "c", "b", "z"],
        "event_type": ["click"] * 5,
        "timestamp": pd.to_datetime([T0 + timedelta(minutes=5),  # names r1
                                     T0 + timedelta(hours=2),  # latest showing of a: r2
                                     T0 + timedelta(minutes=30),  # c: only r1 was before
                                     T0 + timedelta(days=3),  # b: r1 is out of the window
                                     T0 + timedelta(hours=2)], utc=True),  # z: never shown
        "rec_id": ["r1", None, None, None, None],
        "position": pd.array([pd.NA] * 5, dtype="Int64"),
    })
    out = attribute(events, impressions, window=timedelta(hours=24)).set_index("event_id")
    assert out["rec_id"].tolist()[:3] == ["r1", "r2", "r1"]
    assert out["rec_id"].isna().tolist()[3:] == [True, True]
    assert out.loc["e1", "position"] == 0 and out.loc["e2", "position"] == 1
    assert out.loc["e3", "position"] == 2
    assert out.loc["e2", "variant"] == "treatment" and out.loc["e1", "variant"] == "control"


def test_a_list_logged_twice_is_read_once_and_non_impressions_are_refused(
        tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.append([impression_record("r2", (T0 + timedelta(hours=1)).timestamp(),
                                  _body("u1", ["c", "a"], "treatment"), 6.5)])  # redelivered
    assert log.read()["rec_id"].tolist() == ["r1", "r1", "r1", "r2", "r2", "r3"]
    record = impression_record("r4", T0.timestamp(), _body("u3", ["a"]), 1.0)
    assert impression_from_json(json.dumps(record)) == record
    for bad in ('{"rec_id": "r5", "user_id": "u"}', '["r5"]', "not json",
                json.dumps({**record, "timestamp": "yesterday"}),
                json.dumps({**record, "items": "a"})):
        with pytest.raises(ValueError):
            impression_from_json(bad)

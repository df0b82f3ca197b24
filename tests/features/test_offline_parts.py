"""Offline tables written a part at a time equal the table of the parts' concatenation."""

from pathlib import Path

import pandas as pd

from recsys.features.names import USER_CANDIDATES
from recsys.features.store import write_offline_parts, write_offline_table


def part(users: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": users,
        "event_timestamp": pd.Timestamp("2026-12-01T10:00:00.123456789Z"),
        "model_version": "3",
        "candidate_block": [u.encode() * 3 for u in users],
    })


def test_parts_make_the_table_of_their_concatenation(tmp_path: Path) -> None:
    parts = [part(["u1", "u2"]), part(["u3"]), part(["u4", "u5", "u6"])]
    path, rows = write_offline_parts(USER_CANDIDATES, iter(parts), tmp_path)
    whole = write_offline_table(USER_CANDIDATES, pd.concat(parts, ignore_index=True),
                                tmp_path / "whole")
    assert rows == 6
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(whole))
    assert pd.read_parquet(path)["candidate_block"].tolist()[2] == b"u3u3u3"


def test_no_part_leaves_the_table_as_it_was(tmp_path: Path) -> None:
    path = write_offline_table(USER_CANDIDATES, part(["u1"]), tmp_path)
    assert write_offline_parts(USER_CANDIDATES, iter([]), tmp_path) == (path, 0)
    assert pd.read_parquet(path)["user_id"].tolist() == ["u1"]

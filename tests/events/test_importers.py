import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.events.importers import ColumnMapping, load_dataset, load_events_file, load_movielens
from recsys.events.schema import EVENT_DTYPES, ITEM_DTYPES, USER_DTYPES
from recsys.events.validation import validate_events

ML_100K = Path("/work/shared/data/ml-100k")


@pytest.mark.skipif(not (ML_100K / "u.data").exists(), reason="ml-100k not available")
def test_real_ml_100k() -> None:
    data = load_dataset(ML_100K)
    assert len(data.events) == 100_000 and data.quarantined.empty
    assert data.events["user_id"].nunique() == 943 and len(data.users) == 943
    assert data.events["item_id"].nunique() == 1682 and len(data.items) == 1682
    assert data.events.dtypes.astype(str).to_dict() == EVENT_DTYPES
    assert data.items.dtypes.astype(str).to_dict() == ITEM_DTYPES
    assert data.users.dtypes.astype(str).to_dict() == USER_DTYPES
    first = data.events[data.events["event_id"] == "ml-196-242-881250949"].iloc[0]
    assert (first["user_id"], first["item_id"], first["value"]) == ("196", "242", 3.0)
    assert first["timestamp"] == pd.Timestamp(881250949, unit="s", tz="UTC")
    toy_story = data.items.set_index("item_id").loc["1"]
    assert toy_story["title"] == "Toy Story (1995)"
    assert toy_story["categories"] == ["Animation", "Children's", "Comedy"]
    assert toy_story["created_at"] == pd.Timestamp("1995-01-01", tz="UTC")
    user = data.users.set_index("user_id").loc["2"]
    assert (user["age"], user["gender"], user["occupation"]) == (53, "F", "other")
    sample = data.events.sample(3000, random_state=0)
    assert validate_events(sample).quarantined.empty


def _write(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.write_text(text, encoding=encoding)


def test_ml_1m_format(tmp_path: Path) -> None:
    _write(
        tmp_path / "ratings.dat", "1::10::5::978300760\n1::20::3::978302109\n2::10::7::978301968\n"
    )
    _write(
        tmp_path / "movies.dat",
        "10::Star Trek: The Motion Picture (1979)::Action|Sci-Fi\n20::Ending: (2000)::Drama\n",
        encoding="latin-1",
    )
    _write(tmp_path / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    data = load_movielens(tmp_path)
    assert data.events.dtypes.astype(str).to_dict() == EVENT_DTYPES
    assert data.users.dtypes.astype(str).to_dict() == USER_DTYPES
    assert data.events["event_id"].tolist() == ["ml-1-10-978300760", "ml-1-20-978302109"]
    assert data.quarantined["reason"].tolist() == ["value: rating outside [0.5, 5.0]"]
    assert data.quarantined["user_id"].tolist() == ["2"]
    items = data.items.set_index("item_id")
    assert items.loc["10", "title"] == "Star Trek: The Motion Picture (1979)"
    assert items.loc["10", "categories"] == ["Action", "Sci-Fi"]
    assert items.loc["20", "title"] == "Ending: (2000)"
    assert items.loc["20", "created_at"] == pd.Timestamp("2000-01-01", tz="UTC")
    users = data.users.set_index("user_id")
    assert users.loc["1", "occupation"] == "K-12 student"
    assert users.loc["2", "region"] == "70072" and users.loc["2", "age"] == 56


def test_ml_latest_format(tmp_path: Path) -> None:
    _write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,0.5,964981247\n5,1,3.5,847434962\n",
    )
    _write(
        tmp_path / "movies.csv",
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
        '3,"Grumpier Old Men, The (1995)",(no genres listed)\n',
    )
    data = load_dataset(tmp_path)
    assert data.events["value"].tolist() == [4.0, 0.5, 3.5]
    assert data.events["user_id"].tolist() == ["1", "1", "5"]
    items = data.items.set_index("item_id")
    assert items.loc["3", "title"] == "Grumpier Old Men, The (1995)"
    assert items.loc["3", "categories"] == []
    assert sorted(data.users["user_id"]) == ["1", "5"] and data.users["age"].isna().all()


def _events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    _write(
        path,
        "uid,sku,when,kind,amount\n"
        "7,0042,2024-05-01T10:00:00Z,view,\n"  # ok
        "7,0042,1714557660,click,\n"  # ok, epoch seconds
        "8,0043,2024-05-01 12:00:00+02:00,rate,4\n"  # ok
        "8,0044,yesterday,view,\n"  # unparseable timestamp
        "9,0045,2024-05-01T10:00:00,view,\n"  # naive timestamp
        "9,0046,2024-05-01T10:00:00Z,rate,abc\n"  # value not a number
        "9,0047,2024-05-01T10:00:00Z,dance,\n"  # unknown type (validation)
        "9,0048,,view,\n",  # missing timestamp
    )
    return path


MAPPING = ColumnMapping(
    user_id="uid", item_id="sku", timestamp="when", event_type="kind", value="amount"
)


def test_generic_csv_with_mapping_quarantines_bad_rows(tmp_path: Path) -> None:
    data = load_events_file(_events_csv(tmp_path), MAPPING)
    assert len(data.events) + len(data.quarantined) == 8
    assert data.events["item_id"].tolist() == ["0042", "0042", "0043"]
    assert data.events.dtypes.astype(str).to_dict() == EVENT_DTYPES
    assert data.events["timestamp"].tolist() == [
        pd.Timestamp("2024-05-01T10:00:00Z"),
        pd.Timestamp("2024-05-01T10:01:00Z"),
        pd.Timestamp("2024-05-01T10:00:00Z"),
    ]
    reasons = dict(zip(data.quarantined["sku"], data.quarantined["reason"], strict=True))
    assert reasons["0044"].startswith("timestamp: cannot parse 'yesterday'")
    assert "no timezone" in reasons["0045"]
    assert reasons["0046"] == "value: not a number 'abc'"
    assert reasons["0047"].startswith("event_type:")
    assert reasons["0048"].startswith("timestamp: missing")
    assert data.items.empty and data.users.empty


def test_naive_timezone_option_and_deterministic_ids(tmp_path: Path) -> None:
    path = _events_csv(tmp_path)
    mapping = replace(MAPPING, naive_timezone="Europe/Paris")
    first = load_events_file(path, mapping)
    naive = first.events[first.events["item_id"] == "0045"].iloc[0]
    assert naive["timestamp"] == pd.Timestamp("2024-05-01T08:00:00Z")
    assert first.events["event_id"].str.fullmatch(r"evt-[0-9a-f]{16}").all()
    assert first.events["event_id"].is_unique
    again = load_events_file(path, mapping)
    assert again.events["event_id"].tolist() == first.events["event_id"].tolist()


def test_parquet_and_jsonl_inputs_agree_with_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": [1, 2],
            "item_id": [10, 11],
            "timestamp": pd.to_datetime(["2024-05-01T10:00:00Z", "2024-05-02T09:30:00Z"]),
            "value": [np.nan, 2.0],
            "context": [{"device": "tv"}, None],
        }
    )
    frame.drop(columns="context").to_parquet(tmp_path / "a.parquet")
    parquet = load_events_file(tmp_path / "a.parquet")
    assert parquet.events["event_type"].tolist() == ["view", "view"]
    assert parquet.events["user_id"].tolist() == ["1", "2"]
    jsonl = tmp_path / "b.jsonl"
    with jsonl.open("w") as handle:
        for row in frame.assign(timestamp=frame["timestamp"].astype(str)).to_dict("records"):
            value = None if pd.isna(row["value"]) else row["value"]
            handle.write(json.dumps({**row, "value": value}) + "\n")
    from_json = load_events_file(jsonl)
    assert from_json.events["context"].tolist() == ['{"device":"tv"}', "{}"]
    # The content hash ignores the file format, so re-imports are idempotent.
    assert from_json.events["event_id"].tolist() == parquet.events["event_id"].tolist()
    # Both files hold the same two events: the folder load keeps each once.
    folder = load_dataset(tmp_path)
    assert len(folder.events) == 2
    assert folder.quarantined["reason"].tolist() == ["duplicate event_id"] * 2


def test_errors_are_loud(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    _write(path, "user,item,ts\n1,2,3\n")
    with pytest.raises(ValueError, match="lacks column"):
        load_events_file(path)
    with pytest.raises(ValueError, match="unknown format"):
        load_dataset(path, fmt="xml")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a MovieLens folder"):
        load_movielens(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        load_events_file(tmp_path / "notes.txt")

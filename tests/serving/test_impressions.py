"""The impression recorder: one append on the request path, a flush that loses nothing."""

import json
import time
from pathlib import Path

import pytest

from recsys.events.impressions import ImpressionLog
from serving.impressions import ImpressionRecorder, new_rec_id
from serving.schemas import RecommendedItem, RecommendResponse


def body(user: str, items: list[str], **extra: object) -> bytes:
    return json.dumps({"user_id": user, "items": [{"item_id": i, "score": 1.0} for i in items],
                       "model_version": "2", "fallback": False, **extra}).encode()


def test_flush_writes_lists_and_errors_and_keeps_them_when_the_sink_fails(
        tmp_path: Path) -> None:
    log = ImpressionLog(tmp_path)
    failing = True

    def sink(records: list[dict]) -> None:
        if failing:
            raise OSError("disk full")
        log.append(records)

    recorder = ImpressionRecorder(sink, flush_seconds=0)
    first, error = new_rec_id(), new_rec_id()
    recorder.record(first, time.time(), body("u1", ["a", "b"], variant="v1"), 3.0)
    recorder.record(error, time.time(), body("u2", [], error=True), 9.0)
    with pytest.raises(OSError):
        recorder.flush()
    failing = False
    assert recorder.flush() == 2  # nothing was dropped by the failed flush
    frame = log.read()
    assert frame["rec_id"].tolist() == [first, first, error]
    assert frame["error"].tolist() == [False, False, True]
    assert frame.loc[0, "variant"] == "v1" and frame.loc[2, "item_id"] is None
    assert recorder.flush() == 0


def test_a_ranked_response_and_its_body_make_the_same_impression() -> None:
    items = [RecommendedItem(item_id=f"i{n}", score=score, title='a "title"', reason="r")
             for n, score in enumerate([0.1, -2.5e-07, 1e20])]
    response = RecommendResponse(user_id="u1", items=items, model_version="7", fallback=False,
                                 latency_ms=1.0, experiment_id="e1", variant="b")
    body = response.model_dump_json(exclude={"cached", "latency_ms", "rec_id"}).encode()
    out: list[dict] = []
    recorder = ImpressionRecorder(out.extend, flush_seconds=0)
    for _ in range(2):  # the same cached body twice: parsed once, the same impression
        recorder.record("r", 1.0, body, 2.0)
    recorder.record("r", 1.0, response, 2.0)
    assert recorder.flush() == 3
    assert out[0] == out[1] == out[2]
    assert out[0]["items"] == [["i0", 0.1], ["i1", -2.5e-07], ["i2", 1e20]]

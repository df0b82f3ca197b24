"""Time windows of training and the holdout truth of evaluation."""

import pandas as pd
import pytest

from recsys.evaluation.holdout import evaluated_users, holdout_truth
from recsys.evaluation.windows import time_windows


def interactions(days: int) -> pd.DataFrame:
    stamps = pd.date_range("2026-01-01T12:00Z", periods=days, freq="D")
    return pd.DataFrame({"user_id": ["u1"] * days, "item_id": [f"i{d}" for d in range(days)],
                         "timestamp": stamps, "weight": 1.0})


def test_windows_cut_at_midnights_in_time_order() -> None:
    w = time_windows(interactions(40), holdout_fraction=0.2, label_fraction=0.25)
    assert w.start < w.label_start < w.holdout_start <= w.end
    for cut in (w.label_start, w.holdout_start):
        assert cut == cut.floor("D")
    assert (w.holdout_start - w.start).days == pytest.approx(32, abs=1)


def test_too_short_a_window_fails_loudly() -> None:
    with pytest.raises(ValueError, match="too short"):
        time_windows(interactions(1), holdout_fraction=0.15, label_fraction=0.15)


def test_holdout_truth_drops_unknown_users_and_items_seen_in_training() -> None:
    t = pd.Timestamp
    frame = pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u3"],
        "item_id": ["a", "a", "b", "c", "d"],
        "timestamp": [t("2026-01-01", tz="UTC"), t("2026-01-10", tz="UTC"),
                      t("2026-01-10", tz="UTC"), t("2026-01-01", tz="UTC"),
                      t("2026-01-10", tz="UTC")],
    })
    windows = type("W", (), {"holdout_start": t("2026-01-05", tz="UTC")})()
    assert holdout_truth(frame, windows) == {"u1": {"b"}}


def test_evaluated_users_are_a_seeded_sample_beyond_the_cap() -> None:
    truth = {f"u{k}": {"i1"} for k in range(50)}
    assert evaluated_users(truth) == sorted(truth)
    assert evaluated_users(truth, max_users=50) == sorted(truth)
    sample = evaluated_users(truth, max_users=10, seed=3)
    assert len(set(sample)) == 10 and set(sample) <= set(truth) and sample == sorted(sample)
    assert evaluated_users(truth, max_users=10, seed=3) == sample
    assert evaluated_users(truth, max_users=10, seed=4) != sample

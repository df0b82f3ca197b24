"""Drift of the latest day from the training window: figures with known answers."""

import math

import pandas as pd
import pytest

from recsys.evaluation.drift import (
    DriftPolicy,
    event_drift,
    population_stability_index,
    split_latest_day,
    total_variation,
)


def day_of_events(day: str, users: int, per_user: int, types: list[str],
                  items: list[str]) -> pd.DataFrame:
    """``users`` users with ``per_user`` events each, cycling through ``types`` and ``items``."""
    n = users * per_user
    return pd.DataFrame({
        "user_id": [f"u{i // per_user}" for i in range(n)],
        "item_id": [items[i % len(items)] for i in range(n)],
        "event_type": [types[i % len(types)] for i in range(n)],
        "timestamp": pd.to_datetime([f"{day}T10:00Z"] * n, utc=True)
        + pd.to_timedelta(range(n), unit="s"),
    })


STABLE_TYPES = ["view", "view", "view", "click"]
ITEMS = ["a", "b", "c", "d"]


def window(last: pd.DataFrame | None = None) -> pd.DataFrame:
    days = [day_of_events(f"2026-11-0{d}", 10, 4, STABLE_TYPES, ITEMS) for d in (1, 2, 3)]
    return pd.concat([*days, last if last is not None else
                      day_of_events("2026-11-04", 10, 4, STABLE_TYPES, ITEMS)], ignore_index=True)


def test_total_variation_known_values() -> None:
    a = pd.Series({"x": 1, "y": 1})
    assert total_variation(a, a * 7) == 0.0
    assert total_variation(a, pd.Series({"z": 3})) == 1.0
    assert total_variation(a, pd.Series({"x": 1, "z": 1})) == 0.5
    assert total_variation(pd.Series({"x": 3, "y": 1}), pd.Series({"x": 1, "y": 1})) == 0.25
    assert total_variation(a, pd.Series(dtype=float)) == 0.0


def test_psi_is_zero_for_the_same_shares_and_matches_the_formula() -> None:
    assert population_stability_index([1, 2, 3, 3], [1, 2, 3, 3, 1, 2, 3, 3]) == 0.0
    # two bins, shares (0.5, 0.5) then (0.9, 0.1)
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    psi = population_stability_index([1] * 5 + [10] * 5, [1] * 9 + [10], edges=[5])
    assert psi == pytest.approx(expected)
    assert population_stability_index([], [1]) == 0.0


def test_split_latest_day_takes_the_last_utc_day() -> None:
    events = window()
    before, latest, day = split_latest_day(events)
    assert day == "2026-11-04" and len(latest) == 40 and len(before) == 120


def test_a_stable_last_day_passes_with_zero_drift() -> None:
    report = event_drift(window())
    assert report.passed, report.failures
    assert report.event_mix_tvd == 0.0 and report.items_tvd == 0.0
    assert report.activity_psi == 0.0
    assert report.activity_mean == (4.0, 4.0) and report.activity_std == (0.0, 0.0)
    assert report.figures()["latest_events"] == 40


def test_a_shifted_last_day_fails_each_rule_by_name() -> None:
    # every event a purchase of a new item, by users with 20 events each
    shifted = day_of_events("2026-11-04", 2, 20, ["purchase"], ["z"])
    report = event_drift(window(shifted))
    assert not report.passed
    assert report.event_mix_tvd == 1.0 and report.items_tvd == 1.0
    assert report.activity_psi > 0.25
    assert report.activity_mean == (4.0, 20.0)
    assert [f.split()[0] for f in report.failures] == ["event-type", "items'", "events"]


def test_only_the_mix_rule_fires_when_only_the_mix_moves() -> None:
    # half clicks instead of a quarter: TVD 0.25; same items, same activity
    moved = day_of_events("2026-11-04", 10, 4, ["view", "click"], ITEMS)
    report = event_drift(window(moved))
    assert report.event_mix_tvd == pytest.approx(0.25)
    assert report.items_tvd == 0.0 and report.activity_psi == 0.0
    assert len(report.failures) == 1 and "event-type" in report.failures[0]
    assert event_drift(window(moved), DriftPolicy(max_event_mix_tvd=0.3)).passed


def test_a_single_day_has_nothing_to_compare_with() -> None:
    report = event_drift(day_of_events("2026-11-01", 3, 2, STABLE_TYPES, ITEMS))
    assert report.passed and report.window_events == 0 and report.latest_events == 6

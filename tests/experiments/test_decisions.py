"""Decision rules on impressions and outcomes whose right answer is known, and the store."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.experiments.analysis import analyse
from recsys.experiments.assignment import assign
from recsys.experiments.decisions import (
    CONTINUE,
    HALT,
    NO_DIFFERENCE,
    PROMOTE,
    ROLLBACK,
    act,
    decide,
    plan,
)
from recsys.experiments.model import Experiment, ExperimentSpec, Variant
from recsys.experiments.store import ExperimentStore, SurfaceTakenError

START = datetime(2026, 5, 1, tzinfo=UTC)


def spec(name: str = "exp", users: int = 600, **kw: object) -> ExperimentSpec:
    return ExperimentSpec(experiment_id=name, variants=[
        Variant(name="control", percent=50), Variant(name="treatment", percent=50,
                                                      model_alias="challenger")],
        min_users_per_variant=users, **kw)


def traffic(experiment: Experiment, users: int, click: dict[str, float], days: int = 3,
            latency: dict[str, float] | None = None, seed: int = 0,
            keep: dict[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user sees one list of 3 items a day and clicks each with the arm's rate."""
    rng = np.random.default_rng(seed)
    shown, events = [], []
    for u in range(users):
        user = f"u{u}"
        arm = assign(experiment, user)
        if keep and rng.random() > keep.get(arm, 1.0):
            continue
        for day in range(days):
            at = START + timedelta(days=day, hours=int(rng.integers(0, 20)))
            rec_id = f"{user}-{day}"
            ms = (latency or {}).get(arm, 5.0) * rng.uniform(0.5, 1.5)
            for pos in range(3):
                item = f"i{(u + day + pos) % 50}"
                shown.append((rec_id, user, item, pos, 1.0, "1", experiment.experiment_id, arm,
                              False, ms, False, at))
                if rng.random() < click[arm]:
                    events.append((f"e-{rec_id}-{pos}", user, item, "click", np.nan,
                                   at + timedelta(minutes=1), None))
    impressions = pd.DataFrame(shown, columns=[
        "rec_id", "user_id", "item_id", "position", "score", "model_version", "experiment_id",
        "variant", "fallback", "latency_ms", "error", "timestamp"])
    impressions["timestamp"] = pd.to_datetime(impressions["timestamp"], utc=True)
    frame = pd.DataFrame(events, columns=["event_id", "user_id", "item_id", "event_type",
                                          "value", "timestamp", "rec_id"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["position"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return impressions, frame


@pytest.fixture
def store(tmp_path: Path) -> ExperimentStore:
    return ExperimentStore(tmp_path / "experiments.db")


def run(store: ExperimentStore, name: str, click: dict[str, float], users: int = 1200,
        **kw: object):
    experiment = store.create(spec(name, users=500), salt="fixed")
    impressions, events = traffic(experiment, users, click, **kw)
    return experiment, analyse(experiment, impressions, events)


def test_a_worse_treatment_is_rolled_back_and_audited(store: ExperimentStore) -> None:
    experiment, analysis = run(store, "worse", {"control": 0.3, "treatment": 0.15})
    assert analysis.daily["look"].max() == 3 and set(analysis.daily["variant"]) == {
        "control", "treatment"}
    decision = decide(experiment, analysis)
    assert decision.action == ROLLBACK and "ctr significantly worse" in decision.reason
    after = act(store, experiment, decision, None, "recsys")
    assert after.status == "stopped" and store.get("worse").decision == ROLLBACK
    audit = store.audit("worse")
    assert [e.action for e in audit] == ["create", ROLLBACK]
    assert audit[-1].details["lift"] < 0


def test_a_better_treatment_is_promoted_only_at_the_planned_size(
        store: ExperimentStore) -> None:
    experiment, analysis = run(store, "better", {"control": 0.15, "treatment": 0.3})
    assert decide(experiment, analysis).action == PROMOTE
    small = store.create(spec("small", users=5000, surface="elsewhere"))
    impressions, events = traffic(small, 1200, {"control": 0.15, "treatment": 0.3})
    assert decide(small, analyse(small, impressions, events)).action == CONTINUE
    # a configuration variant is concluded as the one to adopt (no model to move)
    done = act(store, experiment, decide(experiment, analysis), None, "recsys")
    assert done.status == "concluded" and "adopt" in store.audit("better")[-1].reason


def test_no_difference_at_the_planned_size_keeps_the_control(store: ExperimentStore) -> None:
    experiment, analysis = run(store, "same", {"control": 0.2, "treatment": 0.2})
    assert decide(experiment, analysis).action == NO_DIFFERENCE


def test_a_slow_treatment_breaks_the_latency_guardrail(store: ExperimentStore) -> None:
    experiment, analysis = run(store, "slow", {"control": 0.2, "treatment": 0.2},
                               latency={"control": 5.0, "treatment": 20.0})
    decision = decide(experiment, analysis)
    assert decision.action == ROLLBACK and "p95 latency" in decision.reason


def test_a_treatment_slower_by_a_few_milliseconds_keeps_the_latency_guardrail(
        store: ExperimentStore) -> None:
    # four times the control's p95, but 3 ms: under the guardrail's 10 ms floor
    experiment, analysis = run(store, "bit-slower", {"control": 0.2, "treatment": 0.2},
                               latency={"control": 1.0, "treatment": 4.0})
    assert experiment.guardrails[0].min_increase_ms == 10.0
    assert decide(experiment, analysis).action == NO_DIFFERENCE


def test_a_skewed_split_halts_the_analysis(store: ExperimentStore) -> None:
    experiment, analysis = run(store, "skew", {"control": 0.15, "treatment": 0.3},
                               keep={"treatment": 0.7})
    assert analysis.srm_p < 0.001
    assert decide(experiment, analysis).action == HALT


def test_store_keeps_one_experiment_per_surface_and_the_plan(store: ExperimentStore,
                                                              tmp_path: Path) -> None:
    first = store.create(spec("one", users=10), planned_users_per_variant=123)
    with pytest.raises(SurfaceTakenError):
        store.create(spec("two"))
    reopened = ExperimentStore(tmp_path / "experiments.db")  # durable: another process
    assert reopened.get("one").planned_users_per_variant == 123
    assert reopened.get("one").salt == first.salt
    store.finish("one", "stopped", "stop", "by hand")
    assert store.create(spec("two")).status == "running"
    assert [e.status for e in store.list()] == ["stopped", "running"]


def test_assignment_is_sticky_and_follows_the_percentages() -> None:
    experiment = Experiment(**spec(users=1).model_dump() | {"variants": [
        Variant(name="a", percent=90), Variant(name="b", percent=10)]})
    arms = [assign(experiment, f"u{n}") for n in range(20_000)]
    assert arms == [assign(experiment, f"u{n}") for n in range(20_000)]
    assert 0.09 < arms.count("b") / len(arms) < 0.11


def test_plan_uses_the_baseline_and_the_floor() -> None:
    assert plan(spec(users=10_000)) == 10_000
    assert plan(spec(users=10_000, baseline=0.1, primary_metric="conversion")) > 50_000


def test_looks_are_utc_days_and_the_last_runs_to_the_latest_outcome(
        store: ExperimentStore) -> None:
    experiment = store.create(spec("days", users=500), salt="fixed")
    impressions, events = traffic(experiment, 400, {"control": 0.2, "treatment": 0.2}, days=2)
    shown = impressions.iloc[-1]  # a list of the second day, clicked on the third
    late = pd.DataFrame({"event_id": ["late"], "user_id": [shown["user_id"]],
                         "item_id": [shown["item_id"]], "event_type": ["click"],
                         "value": [np.nan], "rec_id": [shown["rec_id"]],
                         "timestamp": [START + timedelta(days=2, hours=1)]})
    late["timestamp"] = pd.to_datetime(late["timestamp"], utc=True)
    late["position"] = pd.array([pd.NA], dtype="Int64")
    analysis = analyse(experiment, impressions, pd.concat([events, late], ignore_index=True),
                       window=timedelta(days=3))
    clicks = analysis.daily.groupby("look")["clicks"].sum()
    assert clicks.index.tolist() == [1, 2, 3] and clicks[3] == clicks[2] + 1
    days = [START.date() + timedelta(days=n) for n in range(3)]
    assert analysis.lift["day"].tolist() == days
    assert sorted(set(analysis.daily["day"])) == days
    assert (analysis.daily.loc[analysis.daily["look"] == 3, "impressions"].to_numpy()
            == analysis.daily.loc[analysis.daily["look"] == 2, "impressions"].to_numpy()).all()

"""The drift check on ``training_window`` and the freshness checks of the feature assets."""

import dagster as dg
import pandas as pd

from orchestration.defs.asset_checks import freshness_checks, training_window_drift
from orchestration.defs.resources import PlatformStorage


def day_of_events(day: str, users: int, per_user: int, types: list[str],
                  items: list[str]) -> pd.DataFrame:
    n = users * per_user
    return pd.DataFrame({
        "event_id": [f"{day}-{i}" for i in range(n)],
        "user_id": [f"u{i // per_user}" for i in range(n)],
        "item_id": [items[i % len(items)] for i in range(n)],
        "event_type": [types[i % len(types)] for i in range(n)],
        "value": float("nan"),
        "timestamp": pd.to_datetime([f"{day}T10:00Z"] * n, utc=True)
        + pd.to_timedelta(range(n), unit="s"),
        "context": "{}",
    })


def storage_with(tmp_path, last_day: pd.DataFrame) -> PlatformStorage:  # noqa: ANN001
    storage = PlatformStorage(data_dir=str(tmp_path / "data"))
    days = [day_of_events(f"2026-11-0{d}", 10, 4, ["view", "view", "view", "click"],
                          ["a", "b", "c", "d"]) for d in (1, 2, 3)]
    for frame in [*days, last_day]:
        day = frame["timestamp"].dt.strftime("%Y-%m-%d").iloc[0]
        folder = storage.table_dir("validated_events") / f"date={day}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part.parquet", index=False)
    return storage


def run_drift_check(storage: PlatformStorage) -> dg.AssetCheckEvaluation:
    from orchestration.defs.assets.features import training_window

    result = dg.materialize([training_window, training_window_drift],
                            resources={"storage": storage})
    assert result.success  # a warning never fails the run
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_drift_check_passes_on_a_stable_window(tmp_path) -> None:
    stable = day_of_events("2026-11-04", 10, 4, ["view", "view", "view", "click"],
                           ["a", "b", "c", "d"])
    evaluation = run_drift_check(storage_with(tmp_path, stable))
    assert evaluation.passed
    metadata = {key: value.value for key, value in evaluation.metadata.items()}
    assert metadata["latest_day"] == "2026-11-04" and metadata["latest_events"] == 40
    assert metadata["event_mix_tvd"] == 0.0 and metadata["activity_psi"] == 0.0


def test_drift_check_warns_on_a_shifted_last_day(tmp_path) -> None:
    shifted = day_of_events("2026-11-04", 2, 20, ["purchase"], ["z"])
    evaluation = run_drift_check(storage_with(tmp_path, shifted))
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    metadata = {key: value.value for key, value in evaluation.metadata.items()}
    assert metadata["event_mix_tvd"] == 1.0 and metadata["items_tvd"] == 1.0
    assert metadata["activity_mean_latest"] == 20.0
    assert len(metadata["failures"]) == 3


def test_freshness_checks_pass_after_a_materialization_and_fail_without() -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization("user_features"))
    result = dg.materialize(freshness_checks, instance=instance,
                            selection=dg.AssetSelection.checks(*freshness_checks))
    evaluations = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    verdicts = {name: e.passed for name, e in evaluations.items()}
    assert verdicts == {"user_features": True, "item_features": False, "online_features": False}
    assert "dagster/last_updated_timestamp" in evaluations["user_features"].metadata
    assert evaluations["item_features"].severity == dg.AssetCheckSeverity.WARN

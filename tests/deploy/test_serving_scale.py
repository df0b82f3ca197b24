"""The scale benchmark's request mix: users drawn by a Zipf law over the whole population."""

from collections import Counter
from pathlib import Path

from benchmarks.serving_scale import scale_env, zipf_users


def test_zipf_users_cover_the_population_with_a_heavy_head() -> None:
    users = zipf_users(10_000, 50_000, 1.1, seed=3)
    counts = Counter(users)
    assert set(users) <= {f"u{k}" for k in range(10_000)}
    top = counts.most_common(10)
    # rank 1 takes 1 / sum(k ** -1.1 for k <= 10_000) of the draws (~0.16)
    assert 0.12 < top[0][1] / len(users) < 0.2
    assert sum(c for _, c in top) > 0.3 * len(users)
    assert len(counts) > 2_000  # the tail is drawn too
    assert zipf_users(10_000, 50_000, 1.1, seed=3) == users  # seeded


def test_the_scale_world_lives_in_its_own_folder_and_valkey(tmp_path: Path) -> None:
    env = scale_env(tmp_path, 6399, "1gb")
    assert env["RECSYS_EMBEDDED_REDIS_PORT"] == "6399"
    assert all(str(tmp_path) in env[k] for k in ("RECSYS_DATA_DIR", "RECSYS_FEATURE_REPO_DIR",
                                                  "DAGSTER_HOME", "MLFLOW_TRACKING_URI"))

"""The evaluation CLI end to end on a tiny MovieLens-format world whose right answer is known.

Two taste groups rate only their own block of movies (Action or Drama), so any
collaborative model beats popularity by a wide margin. Every frame the pipeline learns from
(candidate fits, tuning, Feast tables, ranker labels) is recorded, and none may hold a test
interaction.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import training.fold_runs
import training.tuning
from recsys.evaluation.protocols import feature_cutoff, make_fold
from recsys.events.importers import load_dataset
from recsys.features.reads import historical_features
from recsys.features.snapshot import FeatureSnapshots
from training.evaluate import MODELS, evaluate, main

N_USERS, BLOCK, PER_USER = 200, 30, 14
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def write_world(path: Path, seed: int = 0) -> Path:
    """An ml-1m folder: ``ratings.dat``, ``movies.dat`` and ``users.dat``."""
    rng = np.random.default_rng(seed)
    movies = [f"{m}::Movie {m} (1995)::{'Action' if m <= BLOCK else 'Drama'}"
              for m in range(1, 2 * BLOCK + 1)]
    ratings = []
    for user in range(1, N_USERS + 1):
        offset = 0 if user % 2 else BLOCK
        for day, movie in enumerate(rng.choice(BLOCK, PER_USER, replace=False) + 1 + offset):
            stamp = T0 + day * 86_400 + user * 600
            ratings.append(f"{user}::{movie}::{rng.integers(1, 6)}::{stamp}")
    users = [f"{u}::{'F' if u % 2 else 'M'}::25::4::00000" for u in range(1, N_USERS + 1)]
    path.mkdir(parents=True, exist_ok=True)
    (path / "ratings.dat").write_text("\n".join(ratings) + "\n")
    (path / "movies.dat").write_text("\n".join(movies) + "\n", encoding="latin-1")
    (path / "users.dat").write_text("\n".join(users) + "\n")
    return path


class Recorder:
    """Wraps what the pipeline learns from and keeps every frame it was handed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.events: list[pd.DataFrame] = []
        self.labels: list[pd.DataFrame] = []
        for module in (training.fold_runs, training.tuning):
            monkeypatch.setattr(module, "binary_interactions", self._wrap(
                module.binary_interactions))
        store = FeatureSnapshots.store

        def recording_store(snapshots, events, items):
            self.events.append(events)
            return store(snapshots, events, items)

        monkeypatch.setattr(FeatureSnapshots, "store", recording_store)
        ranker_lists = training.fold_runs.ranker_lists

        def recording_lists(candidates, labels, *args, **kwargs):
            self.labels.append(labels)
            return ranker_lists(candidates, labels, *args, **kwargs)

        monkeypatch.setattr(training.fold_runs, "ranker_lists", recording_lists)

    def _wrap(self, function):
        def recording(events):
            self.events.append(events)
            return function(events)
        return recording


@pytest.fixture()
def world(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REDIS_URL", redis_url)  # the session's Redis, not a new server
    return write_world(tmp_path / "ml")


@pytest.mark.parametrize("protocol", ["stratified", "temporal"])
def test_cli_reports_every_model_and_never_trains_on_test_events(
    world: Path, protocol: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    tmp_path: Path,
) -> None:
    recorder = Recorder(monkeypatch)
    page = tmp_path / f"{protocol}.html"
    code = main(["--data", str(world), "--protocol", protocol, "--k", "5", "--seeds", "1",
                 "--first-seed", "7", "--json", "--report", str(page)])
    assert code == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "evaluate [1/4] seed 7: split" in captured.err  # progress lines: stderr is no TTY
    assert "evaluate finished 4/4 steps" in captured.err
    html = page.read_text()
    assert '<img src="data:image/png;base64,' in html
    assert f"{report['models']['pipeline']['metrics']['ndcg_at_5']:.4f} ± 0.0000" in html

    assert report["protocol"]["name"] == protocol and report["protocol"]["seeds"] == [7]
    assert report["dataset"]["events"] == N_USERS * PER_USER
    assert set(report["models"]) == set(MODELS)
    for row in report["models"].values():
        assert set(row) == {"metrics", "std", "fit_seconds", "predict_seconds"}
        assert {"ndcg_at_5", "precision_at_5", "recall_at_5", "map_at_5", "hit_rate_at_5",
                "catalog_coverage", "popularity_bias"} == set(row["metrics"]) == set(row["std"])
        assert all(value == 0.0 for value in row["std"].values())  # one seed
    ndcg = {name: row["metrics"]["ndcg_at_5"] for name, row in report["models"].items()}
    assert ndcg["pipeline"] > ndcg["popularity"] + 0.1
    assert ndcg["als"] > ndcg["popularity"] + 0.1
    assert report["per_seed"][0]["pipeline"]["candidates"]["n_per_generator"] == 50
    # the better generator alone on the validation fold, and the pipeline's ratios over each
    best = report["per_seed"][0]["best_generator"]
    assert best in ("als", "item2item")
    assert report["models"]["best_generator"] == report["models"][best]
    assert report["ndcg_ratios"]["pipeline_over_als"] == pytest.approx(
        ndcg["pipeline"] / ndcg["als"], abs=1e-3)

    fold = make_fold(load_dataset(world).events, protocol, seed=7)
    test_ids, train_ids = set(fold.test["event_id"]), set(fold.train["event_id"])
    assert recorder.events and recorder.labels
    for frame in recorder.events:
        assert set(frame["event_id"]) <= train_ids
        assert set(frame["event_id"]).isdisjoint(test_ids)
    train_pairs = set(zip(fold.train["user_id"], fold.train["item_id"], strict=True))
    for labels in recorder.labels:
        assert set(zip(labels["user_id"], labels["item_id"], strict=True)) <= train_pairs


def test_snapshots_serve_features_of_their_own_events_only(
    world: Path, tmp_path: Path
) -> None:
    data = load_dataset(world)
    fold = make_fold(data.events, "stratified", seed=1)
    base = fold.validation(seed=2).train
    with FeatureSnapshots(tmp_path / "snapshots") as snapshots:
        store = snapshots.store(fold.train, data.items)
        assert snapshots.store(fold.train.copy(), data.items) is store  # computed once
        base_store = snapshots.store(base, data.items)
        assert str(tmp_path / "snapshots") in str(store.repo_path)
        for events, feature_store in ((fold.train, store), (base, base_store)):
            expected = events.groupby("item_id")["user_id"].nunique().astype(float)
            pairs = pd.DataFrame({"user_id": events["user_id"].iloc[0],
                                  "item_id": expected.index})
            read = historical_features(feature_store, pairs, feature_cutoff(events), "ranker_v1")
            assert read["item_stats__popularity_total"].tolist() == expected.tolist()


def test_cli_refuses_bad_arguments(world: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--data", str(world), "--protocol", "random"])
    with pytest.raises(SystemExit):
        main(["--data", str(world), "--seeds", "0"])
    with pytest.raises(SystemExit):
        main(["--data", str(world), "--report", "report.pdf"])
    with pytest.raises(SystemExit):
        main(["--data", str(world), "--jobs", "0"])


def test_seeds_in_processes_report_what_seeds_in_turn_do(world: Path) -> None:
    """Two seeds at once, each in a spawned process: seed 7's metrics and pipeline choices
    are those of seed 7 run in this process, and the seeds come back in order."""
    def without_times(seed: dict) -> dict:
        return {"pipeline": seed["pipeline"], "models": {
            name: row["metrics"] for name, row in seed["models"].items()}}

    at_once = evaluate(world, "stratified", k=5, seeds=2, first_seed=7, jobs=2)
    in_turn = evaluate(world, "stratified", k=5, seeds=1, first_seed=7, jobs=1)
    assert [seed["seed"] for seed in at_once["per_seed"]] == [7, 8]
    assert without_times(at_once["per_seed"][0]) == without_times(in_turn["per_seed"][0])
    assert at_once["per_seed"][1]["models"]["pipeline"]["metrics"]["ndcg_at_5"] > 0


def test_cold_protocol_scores_new_items(
    world: Path, capsys: pytest.CaptureFixture,
) -> None:
    """Six movies (three of each genre) enter the catalog and are first rated after the cut,
    each by users of its genre: ALS and popularity cannot name them, the content generator
    and the pipeline (one place per list for new items) can."""
    rng = np.random.default_rng(1)
    with (world / "movies.dat").open("a", encoding="latin-1") as movies:
        for m in range(2 * BLOCK + 1, 2 * BLOCK + 7):
            genre = "Action" if m <= 2 * BLOCK + 3 else "Drama"
            movies.write(f"{m}::New {genre} Story {m} (1996)::{genre}\n")
    with (world / "ratings.dat").open("a") as ratings:
        for user in range(1, N_USERS + 1):
            first = 2 * BLOCK + (1 if user % 2 else 4)
            for day, movie in enumerate(rng.choice(3, 2, replace=False) + first):
                stamp = T0 + (PER_USER + 3 + day) * 86_400 + user * 600
                ratings.write(f"{user}::{movie}::5::{stamp}\n")
    assert main(["--data", str(world), "--protocol", "cold", "--k", "5", "--seeds", "1",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    recall = {name: row["metrics"]["recall_at_5"] for name, row in report["models"].items()}
    print(f"\ncold protocol recall@5 of new items: {recall}")
    assert report["per_seed"][0]["new_items"] == 6
    assert recall["als"] == 0.0 and recall["popularity"] == 0.0
    assert recall["content"] > 0.5
    assert recall["pipeline"] > 0.2

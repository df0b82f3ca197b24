"""Reproducible offline evaluation: popularity, each generator alone and the pipeline on a dataset.

Usage (from the project root)::

    python -m training.evaluate --data ../shared/data/ml-100k --protocol stratified \\
        --k 10 --seeds 3 --json

For each seed the dataset is cut by the protocol (:mod:`recsys.evaluation.protocols`; ``cold``
scores only the items first interacted with after a global time cut, and adds the content
generator alone), each model is fitted on the training part and ranks the full catalogue for
every test user known in training (:mod:`training.fold_runs`), and the metrics of
:func:`recsys.evaluation.metrics.evaluate_rankings` are computed on the held-out items. The
report gives, per model, the mean of every metric over the seeds, its sample standard
deviation (``std``, 0 for one seed), and the mean fit and predict wall times in seconds. The
models: ``popularity``; ``als`` and ``item2item`` (EASE, or item-kNN above its catalog bound)
alone, each with the hyperparameters tuned for the pipeline on the validation fold;
``best_generator``, per seed whichever of those two scored better on the validation fold
(``per_seed[].best_generator`` names it); and the ``pipeline``. ``ndcg_ratios`` divides the
pipeline's mean NDCG@k by each other model's.
Feature tables live in a temporary Feast repo per run, computed from training events only,
and are deleted at the end.

``--report PATH`` also writes a report to look at: ``PATH.html`` is one self-contained page
(the table, mean ± std over seeds, and the NDCG@k / precision@k plot inline), ``PATH.png``
the plot alone (:mod:`training.report`). Progress goes to stderr: a tqdm bar on a terminal,
one line per seed step otherwise (:mod:`training.progress`). ``--jobs N`` evaluates N seeds at
once, each in its own process (by default one at a time): the seeds are independent, so the
report is the same either way, and each process prints its own seed's steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from recsys.evaluation.metrics import evaluate_rankings
from recsys.evaluation.protocols import (
    PROTOCOLS,
    TEST_FRACTION,
    Fold,
    binary_interactions,
    make_fold,
)
from recsys.events.importers import FORMATS, load_dataset
from recsys.features.snapshot import FeatureSnapshots
from recsys.models.exploration import EXPLORE_SLOTS
from training.fold_runs import (
    ModelRun,
    PipelineSettings,
    run_als,
    run_content,
    run_generator,
    run_pipeline,
    run_popularity,
)
from training.progress import Progress
from training.report import write_report

logger = logging.getLogger(__name__)

MODELS = ("popularity", "als", "item2item", "best_generator", "pipeline")
#: The cold-item protocol also scores the content generator alone.
COLD_MODELS = ("popularity", "als", "item2item", "best_generator", "content", "pipeline")
#: The tuning search's name of each generator that can stand alone (``ease`` tunes the
#: pipeline's ``item2item``: EASE, or item-kNN above its catalog bound).
TUNED_GENERATORS = {"als": "als", "ease": "item2item"}
#: Progress steps of one seed (see :func:`evaluate_seed`).
SEED_STEPS = 4


def score_run(run: ModelRun, fold: Fold, k: int) -> dict[str, float]:
    """Metrics at ``k`` of one run against the fold's relevant items.

    Coverage counts distinct recommended items over the items seen in training; popularity
    bias uses training interaction counts.
    """
    popularity = binary_interactions(fold.train).groupby("item_id").size().astype(float)
    metrics = evaluate_rankings(
        run.rankings, fold.scored(), k, catalog_size=len(popularity),
        item_popularity=popularity.to_dict(),
    )
    metrics.pop("n_users")
    return metrics


def evaluate_seed(
    events: pd.DataFrame, items: pd.DataFrame, protocol: str, seed: int, k: int,
    snapshots: FeatureSnapshots, settings: PipelineSettings, progress: Progress | None = None,
) -> dict[str, Any]:
    """Every model on the fold of one seed: metrics, times and the pipeline's choices.

    ``progress`` is told of the seed's :data:`SEED_STEPS` steps as they run.
    """
    progress = progress or Progress(SEED_STEPS, f"seed {seed}", tty=False)

    def step(label: str) -> None:
        progress.step(f"seed {seed}: {label}")

    step("split and pipeline (tune, features, ranker)")
    fold = make_fold(events, protocol, seed)
    logger.info("seed %d: %d train events, %d test events, %d test users",
                seed, len(fold.train), len(fold.test), len(fold.relevant))
    pipeline, params = run_pipeline(fold, items, snapshots, k, settings)
    progress.done()
    step("popularity")
    runs = {"popularity": run_popularity(fold, k)}
    progress.done()
    step("ALS and item-to-item alone")
    runs.update(als=run_als(fold, params, k), item2item=run_generator(fold, params, "item2item", k),
                pipeline=pipeline)
    best = best_generator(pipeline.details["validation_ndcg"])
    runs["best_generator"] = runs[best]
    if protocol == "cold":
        runs["content"] = run_content(fold, items, params, k)
    progress.done()
    step("metrics")
    models = {}
    for name in models_of(protocol):
        run = runs[name]
        models[name] = {"metrics": score_run(run, fold, k), "fit_seconds": run.fit_seconds,
                        "predict_seconds": run.predict_seconds}
        logger.info("seed %d %s: %s", seed, name, models[name])
    progress.done()
    return {
        "seed": seed, "train_events": len(fold.train), "test_events": len(fold.test),
        "test_users": len(fold.scored()), "models": models, "pipeline": pipeline.details,
        "best_generator": best,
        **({"new_items": len(fold.new_items)} if protocol == "cold" else {}),
    }


def best_generator(validation_ndcg: dict[str, float]) -> str:
    """The generator alone with the best NDCG@k on the validation fold (ties: ALS)."""
    scores = {model: validation_ndcg[name] for name, model in TUNED_GENERATORS.items()
              if name in validation_ndcg}
    return max(scores, key=scores.__getitem__)


def ratios(models: dict[str, Any], k: int) -> dict[str, float]:
    """The pipeline's NDCG@k over that of each other model (mean over seeds)."""
    key = f"ndcg_at_{k}"
    pipeline = models["pipeline"]["metrics"][key]
    return {f"pipeline_over_{name}": round(pipeline / row["metrics"][key], 4)
            for name, row in models.items() if name != "pipeline" and row["metrics"][key] > 0}


def models_of(protocol: str) -> tuple[str, ...]:
    """The models a protocol reports."""
    return COLD_MODELS if protocol == "cold" else MODELS


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation of each model's metrics and times over seeds."""
    summary: dict[str, Any] = {}
    for name in per_seed[0]["models"]:
        runs = [seed["models"][name] for seed in per_seed]
        metrics = pd.DataFrame([run["metrics"] for run in runs])
        ddof = 1 if len(runs) > 1 else 0
        summary[name] = {
            "metrics": metrics.mean().round(4).to_dict(),
            "std": metrics.std(ddof=ddof).round(4).to_dict(),
            "fit_seconds": round(float(np.mean([r["fit_seconds"] for r in runs])), 2),
            "predict_seconds": round(float(np.mean([r["predict_seconds"] for r in runs])), 2),
        }
    return summary


def evaluate(
    path: Path, protocol: str, k: int = 10, seeds: int = 3, first_seed: int = 42,
    fmt: str = "auto", threads: int = 1, progress: Progress | None = None,
    explore_slots: int | None = None, jobs: int = 1,
) -> dict[str, Any]:
    """Load ``path`` and evaluate every model under ``protocol``; returns the JSON report.

    ``threads`` bounds ALS, LightGBM and BLAS: their worker threads spin while waiting, so
    on a machine shared with other work one thread each is the faster choice. ``progress``
    (by default a bar on a terminal, plain lines on stderr otherwise) follows every seed's
    steps. ``explore_slots`` is how many places per list the pipeline gives new items (the
    content generator's, :func:`recsys.models.exploration.explore`); by default one under
    ``cold``, none under the protocols that score ranking accuracy on known items. ``jobs``
    seeds run at once, each in a process of its own (:func:`_seeds_in_processes`).
    """
    start = time.perf_counter()
    dataset = load_dataset(path, fmt)
    events = dataset.events
    if explore_slots is None:
        explore_slots = EXPLORE_SLOTS if protocol == "cold" else 0
    settings = PipelineSettings(threads=threads, explore_slots=explore_slots)
    seed_list = list(range(first_seed, first_seed + seeds))
    if min(jobs, seeds) > 1:
        per_seed = _seeds_in_processes(events, dataset.items, protocol, seed_list, k, settings,
                                       min(jobs, seeds))
    else:
        per_seed = []
        progress = progress or Progress(seeds * SEED_STEPS, "evaluate")
        with FeatureSnapshots() as snapshots, threadpool_limits(threads), progress:
            for seed in seed_list:
                per_seed.append(evaluate_seed(events, dataset.items, protocol, seed, k,
                                              snapshots, settings, progress))
    return {
        "dataset": {
            "path": str(path), "events": len(events), "users": int(events["user_id"].nunique()),
            "items": int(events["item_id"].nunique()), "quarantined": len(dataset.quarantined),
        },
        "protocol": {
            "name": protocol, "test_fraction": TEST_FRACTION, "k": k,
            "seeds": list(range(first_seed, first_seed + seeds)), "relevance": "binary",
            "ranking": "full catalog, items seen in training removed",
            "explore_slots": explore_slots,
            **({"scored": "items whose first interaction is after the cut"}
               if protocol == "cold" else {}),
        },
        "models": (models := summarize(per_seed)),
        "ndcg_ratios": ratios(models, k),
        "per_seed": [_round(seed) for seed in per_seed],
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def _one_seed(events: pd.DataFrame, items: pd.DataFrame, protocol: str, seed: int, k: int,
              settings: PipelineSettings, log_level: int) -> dict[str, Any]:
    """:func:`evaluate_seed` in a worker process, with its own snapshots and thread limits."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    progress = Progress(SEED_STEPS, f"evaluate seed {seed}", tty=False)
    with FeatureSnapshots() as snapshots, threadpool_limits(settings.threads), progress:
        return evaluate_seed(events, items, protocol, seed, k, snapshots, settings, progress)


def _seeds_in_processes(events: pd.DataFrame, items: pd.DataFrame, protocol: str,
                        seeds: list[int], k: int, settings: PipelineSettings,
                        jobs: int) -> list[dict[str, Any]]:
    """Each seed's :func:`evaluate_seed` in one of ``jobs`` fresh (spawned) processes, in
    seed order. Seeds share nothing but their inputs, so this equals running them in turn."""
    context = multiprocessing.get_context("spawn")  # no forked copy of loaded thread pools
    level = logging.getLogger().getEffectiveLevel()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_one_seed, events, items, protocol, seed, k, settings, level)
                   for seed in seeds]
        return [future.result() for future in futures]


def _round(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _round(item) for key, item in value.items()}
    if isinstance(value, float | np.floating):
        return round(float(value), 4)
    return value


def _table(report: dict[str, Any], k: int) -> str:
    lines = [f"{'model':<12}{'ndcg@k':>10}{'prec@k':>10}{'recall@k':>10}{'map@k':>10}"
             f"{'fit s':>9}{'predict s':>11}"]
    for name, row in report["models"].items():
        m = row["metrics"]
        lines.append(
            f"{name:<12}{m[f'ndcg_at_{k}']:>10.4f}{m[f'precision_at_{k}']:>10.4f}"
            f"{m[f'recall_at_{k}']:>10.4f}{m[f'map_at_{k}']:>10.4f}"
            f"{row['fit_seconds']:>9.1f}{row['predict_seconds']:>11.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder or file")
    parser.add_argument("--format", default="auto", choices=FORMATS, dest="fmt")
    parser.add_argument("--protocol", default="stratified", choices=PROTOCOLS)
    parser.add_argument("--k", type=int, default=10, help="cut-off rank of the metrics")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds averaged")
    parser.add_argument("--first-seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of ALS, LightGBM and BLAS (default 1)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="seeds evaluated at once, each in its own process (default 1: "
                        "two vCPUs are often one core's two hyperthreads)")
    parser.add_argument("--explore-slots", type=int, default=None, metavar="N",
                        help="places per list for new items in the pipeline (default: 1 "
                        "under cold, 0 otherwise)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--report", type=Path, metavar="PATH",
                        help="also write a report: PATH.html (table and plot) or PATH.png (plot)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    args = parser.parse_args(argv)
    jobs = args.jobs
    if min(args.k, args.seeds, args.threads, jobs) < 1:
        parser.error("--k, --seeds, --threads and --jobs must be positive")
    if args.explore_slots is not None and args.explore_slots < 0:
        parser.error("--explore-slots must not be negative")
    if args.report is not None and args.report.suffix.lower() not in (".html", ".png"):
        parser.error("--report must end in .html or .png")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    report = evaluate(args.data, args.protocol, args.k, args.seeds, args.first_seed, args.fmt,
                      args.threads, explore_slots=args.explore_slots, jobs=jobs)
    print(json.dumps(report, indent=2) if args.json else _table(report, args.k))
    if args.report is not None:
        print(f"report written to {write_report(report, args.report)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Candidate generators on MovieLens 100K: NDCG@10 and precision@10 over the full catalogue.

Protocol (as the Microsoft Recommenders movielens benchmark): every rating is a positive,
per-user stratified 75/25 split with seed 42, seen items removed, k = 10. Hyper-parameters are
chosen on a validation split carved out of train (stratified 75/25 of train, seed 42); the
chosen setting is then refitted on the whole train split and scored once on test.

Usage: ``python benchmarks/candidates_ml100k.py [PATH]`` where ``PATH`` is the ml-100k
folder or its ``u.data`` (default: ``../shared/data/ml-100k`` next to the repo). Prints JSON.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.evaluation.metrics import evaluate_rankings
from recsys.evaluation.splits import stratified_split
from recsys.models.als import ALSCandidates
from recsys.models.generator import CandidateGenerator
from recsys.models.item_to_item import EASECandidates, ItemKNNCandidates
from recsys.models.popularity import PopularityCandidates

logger = logging.getLogger(__name__)

K = 10
SEED = 42
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"

GRIDS: dict[str, tuple[Callable[..., CandidateGenerator], list[dict[str, Any]]]] = {
    "popularity": (PopularityCandidates, [{}]),
    "als": (
        ALSCandidates,
        [
            {"factors": f, "regularization": r, "alpha": a, "iterations": i, "random_state": SEED}
            for f, r, a, i in itertools.product(
                [16, 32, 64], [0.1, 1.0, 5.0, 20.0], [1.0, 3.0, 10.0], [15, 30]
            )
        ],
    ),
    "ease": (EASECandidates, [{"l2": lam} for lam in [50, 100, 200, 400, 800, 1600]]),
    "itemknn": (
        ItemKNNCandidates,
        [{"neighbours": nb, "shrinkage": s} for nb in [10, 20, 50, 100] for s in [0.0, 10.0, 50.0]],
    ),
}


def load_ratings(path: Path) -> pd.DataFrame:
    """MovieLens ``u.data`` as an interaction frame (every rating a positive, weight 1)."""
    data = path / "u.data" if path.is_dir() else path
    raw = pd.read_csv(data, sep="\t", names=["user", "item", "rating", "ts"])
    return pd.DataFrame(
        {
            "user_id": raw["user"].astype(str),
            "item_id": raw["item"].astype(str),
            "timestamp": pd.to_datetime(raw["ts"], unit="s", utc=True),
            "weight": 1.0,
        }
    )


def evaluate(
    generator: CandidateGenerator, train: pd.DataFrame, test: pd.DataFrame
) -> dict[str, float]:
    """Fit on ``train`` and score top-``K`` lists of the test users known in train."""
    start = time.perf_counter()
    generator.fit(train)
    fit_seconds = time.perf_counter() - start
    known = set(generator.interactions.user_ids.tolist())
    test = test[test["user_id"].isin(known)]
    relevant = test.groupby("user_id")["item_id"].agg(set).to_dict()
    start = time.perf_counter()
    recs = generator.recommend(list(relevant), K, exclude_seen=True)
    recommend_seconds = time.perf_counter() - start
    metrics = evaluate_rankings(
        {user: items for user, (items, _) in recs.items()},
        relevant,
        K,
        catalog_size=generator.interactions.n_items,
        item_popularity=generator.interactions.item_popularity(),
    )
    return {**metrics, "fit_seconds": fit_seconds, "recommend_seconds": recommend_seconds}


def main(argv: list[str]) -> dict[str, Any]:
    """Tune every generator on validation, then report its test metrics."""
    ratings = load_ratings(Path(argv[1]) if len(argv) > 1 else DEFAULT_PATH)
    split = stratified_split(ratings, test_fraction=0.25, seed=SEED)
    tune = stratified_split(split.train, test_fraction=0.25, seed=SEED)
    report: dict[str, Any] = {
        "protocol": {
            "k": K,
            "seed": SEED,
            "n_ratings": len(ratings),
            "train": len(split.train),
            "test": len(split.test),
            "validation_train": len(tune.train),
            "validation": len(tune.test),
        },
        "models": {},
    }
    for name, (factory, grid) in GRIDS.items():
        trials = []
        for params in grid:
            scores = evaluate(factory(**params), tune.train, tune.test)
            trials.append(
                {
                    "params": params,
                    f"val_ndcg_at_{K}": scores[f"ndcg_at_{K}"],
                    "fit_seconds": scores["fit_seconds"],
                }
            )
            logger.info("%s %s val ndcg@%d %.4f", name, params, K, scores[f"ndcg_at_{K}"])
        best = max(trials, key=lambda t: t[f"val_ndcg_at_{K}"])
        report["models"][name] = {
            "best_params": best["params"],
            f"val_ndcg_at_{K}": best[f"val_ndcg_at_{K}"],
            "test": evaluate(factory(**best["params"]), split.train, split.test),
            "trials": trials,
        }
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    json.dump(main(sys.argv), sys.stdout, indent=2)
    sys.stdout.write("\n")

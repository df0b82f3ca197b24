"""The pipeline against ALS alone and popularity on generated data sets of the shapes users bring.

``python -m benchmarks.dataset_shapes [--seeds N] [--only NAME ...]`` writes each shape into a
temporary folder, evaluates it with :func:`training.evaluate.evaluate` (the temporal protocol
where the file has timestamps, the stratified one where it has none; tuning on validation
folds only) and prints one JSON line per shape: NDCG@10 of the pipeline, the best generator
alone, ALS alone and popularity, the pipeline's ratios over them, the pipeline's order (ranker
or a generator's) per seed, the wall time and the load average. Nothing is kept.

The shapes (the synthetic world of :mod:`recsys.events.synthetic`, files of
:mod:`recsys.events.sample_files`):

``ratings_csv``
    A MovieLens ``ratings.csv`` (``userId,movieId,rating,timestamp``, half stars) and its
    ``movies.csv`` (genres from the world's categories): 20,000 ratings by about 600 users
    on 3,000 movies over 8 years (the ml-latest-small layout).
``plays``
    Implicit play counts without timestamps: one ``view`` row per (user, item) with its count
    as value, every row at the same instant (so only the stratified protocol applies).
``reviews``
    Sparse product reviews: 12,000 one-type ``rate`` events by 3,000 users on 4,000 items
    over 10 years, no catalog (a long tail of items with one or two reviews).
``ml100k_plays``
    MovieLens 100K (read from ``../shared/data/ml-100k`` when that folder exists, never
    copied) as play counts without timestamps (stratified), its ratings the counts.
``ml100k_reviews``
    Real tastes in the sparse reviews' shape: a random 12 % of MovieLens 100K's ratings as
    one-type ``rate`` events with their times, no catalog (temporal).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.events.importers import load_dataset
from recsys.events.sample_files import FileShape, write_events_folder
from training.evaluate import evaluate
from training.progress import Progress

ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"


def _events(root: Path, shape: FileShape) -> pd.DataFrame:
    return pd.read_csv(write_events_folder(root / "world", shape) / "events.csv", dtype=str)


def ratings_csv(root: Path) -> Path:
    """ml-latest-small's layout: ``ratings.csv`` with half-star ratings."""
    world = write_events_folder(root / "world", FileShape(
        n_events=20_000, n_users=600, n_items=3_000, years=8.0, catalog=True, seed=11))
    events = pd.read_csv(world / "events.csv", dtype=str)
    items = pd.read_csv(world / "items.csv", dtype=str)
    stars = (np.round(events["value"].astype(float) * 2) / 2).clip(0.5, 5.0)
    folder = root / "ratings_csv"
    folder.mkdir()
    pd.DataFrame({"movieId": items["item_id"], "title": "Movie " + items["item_id"] + " (2001)",
                  "genres": items["categories"]}).to_csv(folder / "movies.csv", index=False)
    pd.DataFrame({"userId": events["user_id"], "movieId": events["item_id"], "rating": stars,
                  "timestamp": events["timestamp"]}).to_csv(folder / "ratings.csv", index=False)
    return folder


def _plays(pairs: pd.DataFrame, counts: pd.Series, path: Path) -> Path:
    pd.DataFrame({"user_id": pairs["user_id"].to_numpy(), "item_id": pairs["item_id"].to_numpy(),
                  "timestamp": "2020-01-01T00:00:00Z", "event_type": "view",
                  "value": counts.to_numpy()}).to_csv(path, index=False)
    return path


def plays(root: Path) -> Path:
    """Play counts of the synthetic world, one row per (user, item), no time."""
    events = _events(root, FileShape(n_events=30_000, n_users=800, n_items=1_500,
                                     event_types="many", seed=12))
    counts = events.groupby(["user_id", "item_id"]).size()
    return _plays(counts.index.to_frame(index=False), counts, root / "plays.csv")


def reviews(root: Path) -> Path:
    """Sparse one-type reviews with a long tail, no catalog."""
    folder = write_events_folder(root / "reviews", FileShape(
        n_events=12_000, n_users=3_000, n_items=4_000, years=10.0, seed=13))
    return folder / "events.csv"


def ml100k_plays(root: Path, source: Path = ML100K) -> Path:
    """MovieLens 100K's ratings as play counts without timestamps (a file under ``root``)."""
    events = load_dataset(source).events
    return _plays(events[["user_id", "item_id"]], events["value"].astype(int),
                  root / "ml100k_plays.csv")


def ml100k_reviews(root: Path, source: Path = ML100K, share: float = 0.12) -> Path:
    """A sparse review file cut from MovieLens 100K: a random ``share`` of its ratings as
    one-type ``rate`` events with their timestamps and no catalog (a file under ``root``)."""
    events = load_dataset(source).events
    kept = events.sample(frac=share, random_state=14).sort_values("timestamp")
    path = root / "ml100k_reviews.csv"
    pd.DataFrame({"user_id": kept["user_id"].to_numpy(), "item_id": kept["item_id"].to_numpy(),
                  "timestamp": pd.to_datetime(kept["timestamp"], utc=True).dt.strftime(
                      "%Y-%m-%dT%H:%M:%SZ").to_numpy(),
                  "event_type": "rate", "value": kept["value"].to_numpy()}).to_csv(
        path, index=False)
    return path


SHAPES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "ratings_csv": (ratings_csv, "temporal"),
    "plays": (plays, "stratified"),
    "reviews": (reviews, "temporal"),
    "ml100k_plays": (ml100k_plays, "stratified"),
    "ml100k_reviews": (ml100k_reviews, "temporal"),
}


def measure(name: str, seeds: int, root: Path) -> dict[str, object]:
    """Write shape ``name`` under ``root``, evaluate it and return its JSON line."""
    make, protocol = SHAPES[name]
    path = make(root)
    start = time.perf_counter()
    report = evaluate(path, protocol, 10, seeds, progress=Progress(4 * seeds, name, tty=False))
    wall = time.perf_counter() - start
    ndcg = {model: row["metrics"]["ndcg_at_10"] for model, row in report["models"].items()}
    return {
        "shape": name, "protocol": protocol, **report["dataset"], "seeds": seeds,
        "ndcg_at_10": ndcg, "ratios": report["ndcg_ratios"],
        "order": [seed["pipeline"]["order"] for seed in report["per_seed"]],
        "best_generator": [seed["best_generator"] for seed in report["per_seed"]],
        "wall_seconds": round(wall, 1), "load_average": round(os.getloadavg()[0], 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dataset_shapes",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=sorted(SHAPES), default=None)
    args = parser.parse_args(argv)
    names = args.only or [n for n in SHAPES if not n.startswith("ml100k") or ML100K.exists()]
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"recsys-{name}-") as tmp:
            print(json.dumps(measure(name, args.seeds, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

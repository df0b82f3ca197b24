"""Exact scoring against the faiss IVF index for ALS candidate retrieval, by catalog size.

For catalogs of ``--sizes`` items with ``--factors``-dimensional clustered factors (ALS
factors of a catalog with tastes group the same way), times one user's top-``--k`` search
of :class:`~recsys.models.item_index.ExactIndex` and :class:`~recsys.models.item_index.IVFIndex`
(median
over ``--queries`` users, 50 seen items excluded) and the IVF recall of the exact top-k.
Prints one JSON object per size on stdout. ``python -m benchmarks.item_index``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from recsys.models.item_index import ExactIndex, IVFIndex


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(50, n // 2000), dim))
    labels = rng.integers(0, len(centres), n)
    return (centres[labels] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def median_ms(index: ExactIndex | IVFIndex, users: np.ndarray, k: int,
              excludes: list[np.ndarray]) -> tuple[float, list[set[int]]]:
    times, tops = [], []
    for user, exclude in zip(users, excludes, strict=True):
        start = time.perf_counter()
        cols, _ = index.search(user, k, exclude)
        times.append((time.perf_counter() - start) * 1000)
        tops.append(set(cols.tolist()))
    return statistics.median(times), tops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    for size in args.sizes:
        factors = clustered(size, args.factors, seed=size)
        users = rng.normal(size=(args.queries, args.factors)).astype(np.float32)
        excludes = [rng.choice(size, 50, replace=False) for _ in range(args.queries)]
        start = time.perf_counter()
        ivf = IVFIndex(factors)
        build_s = time.perf_counter() - start
        exact_ms, truth = median_ms(ExactIndex(factors), users, args.k, excludes)
        ivf_ms, found = median_ms(ivf, users, args.k, excludes)
        recall = np.mean([len(t & f) / len(t) for t, f in zip(truth, found, strict=True)])
        print(json.dumps({
            "items": size, "factors": args.factors, "k": args.k,
            "exact_ms": round(exact_ms, 3), "ivf_ms": round(ivf_ms, 3),
            "speedup": round(exact_ms / ivf_ms, 1), "ivf_recall": round(float(recall), 3),
            "ivf_lists": ivf.nlist, "ivf_build_s": round(build_s, 1),
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

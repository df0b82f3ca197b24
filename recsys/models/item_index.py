"""Maximum inner product search over the ALS item factors: exact, or approximate with faiss.

Both indexes answer ``search(user_vector, k, exclude)`` with the catalog columns of the
``k`` best items and their dot-product scores, best first, the ``exclude`` columns (the
user's seen items) left out. :class:`ExactIndex` scores every item (one matrix-vector
product, the right choice up to ~100k items); :class:`IVFIndex` is faiss's inverted-file
index (``IndexIVFFlat`` with ``METRIC_INNER_PRODUCT``, the one ``implicit.ann.faiss``
builds), which scores only the ``nprobe`` of ``nlist`` clusters nearest the user and so
stays fast for catalogs of millions. ``benchmarks/item_index.py`` measures both.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from recsys.models.topn import top_n_of_row

logger = logging.getLogger(__name__)


class ItemIndex(Protocol):
    def search(
        self, user: np.ndarray, k: int, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Columns and scores of the ``k`` best items not in ``exclude``, best first."""
        ...


def _best(columns: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((columns, -scores))[:k]
    return columns[order], scores[order]


class ExactIndex:
    """Scores every item: ``item_factors @ user``."""

    def __init__(self, item_factors: np.ndarray):
        self.factors = np.ascontiguousarray(item_factors, dtype=np.float32)

    def search(
        self, user: np.ndarray, k: int, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self.factors @ user.astype(np.float32)
        scores[exclude] = -np.inf
        return top_n_of_row(scores, k)


class IVFIndex:
    """faiss ``IndexIVFFlat`` over the item factors, inner-product metric.

    Parameters
    ----------
    item_factors
        ``(n_items, factors)`` ALS item factors.
    nlist
        Clusters; default ``4 * sqrt(n_items)`` (faiss's usual choice), at most 2,048, and
        trained by k-means on a sample of 40 items per cluster.
    nprobe
        Clusters searched per query (default an eighth of them): recall rises and speed
        falls with it.
    seed
        Seed of the k-means that trains the clusters.
    """

    def __init__(self, item_factors: np.ndarray, nlist: int | None = None,
                 nprobe: int | None = None, seed: int = 0):
        import faiss

        # One query at a time gains nothing from threads, and idle OpenMP threads spin on
        # the cores the request path and BLAS need (measured: exact scoring 60x slower).
        faiss.omp_set_num_threads(1)
        factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        n_items, dim = factors.shape
        self.nlist = nlist or max(1, min(int(4 * np.sqrt(n_items)), n_items // 39, 2048))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, self.nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        sample = np.random.default_rng(seed).permutation(n_items)[: 40 * self.nlist]
        index.train(factors[np.sort(sample)])
        index.add(factors)
        index.nprobe = min(nprobe or max(1, self.nlist // 8), self.nlist)
        self._quantizer, self._index = quantizer, index  # the index uses the quantizer
        self.n_items = n_items
        logger.info("faiss IVF index: %d items, %d lists, nprobe %d", n_items, self.nlist,
                    index.nprobe)

    def search(
        self, user: np.ndarray, k: int, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        want = min(k + len(exclude), self.n_items)
        scores, columns = self._index.search(user.astype(np.float32).reshape(1, -1), want)
        columns, scores = columns[0], scores[0]
        keep = (columns >= 0) & ~np.isin(columns, exclude)
        return _best(columns[keep].astype(np.int64), scores[keep], k)


def build_index(item_factors: np.ndarray, approximate_from: int) -> ExactIndex | IVFIndex:
    """The exact index below ``approximate_from`` items, the IVF index from there on."""
    if len(item_factors) >= approximate_from:
        return IVFIndex(item_factors)
    return ExactIndex(item_factors)

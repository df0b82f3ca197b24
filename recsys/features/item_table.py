"""The catalog and the item features, held in process as arrays indexed by item position.

Item features change once per materialization, not per request, so the service reads them
in bulk from Feast's online store (the ranker FeatureService's item views) when a model is
loaded and again after each materialization; a request then gathers rows by index instead
of reading hundreds of entities from Redis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd
from feast import FeatureStore

from recsys.features.names import CATEGORY_IDS
from recsys.features.reads import entity_feature_refs, online_entity_features

logger = logging.getLogger(__name__)

#: Items per bulk online read (Feast's Redis store pipelines each batch).
READ_BATCH = 2_000


@dataclass(frozen=True)
class ItemTable:
    """Catalog metadata and scalar item features; row ``i`` is item ``ids[i]``.

    Attributes
    ----------
    features
        ``(n_items, len(feature_names))`` float32 scalar item features (NaN when unknown).
    category_counts
        ``(n_items, n_vocab)`` float32 one-hot of each item's Feast ``category_ids``.
    vectors
        ``(n_items, k)`` float32 unit-norm ALS item factors (zeros where ``has_vector`` is
        False), for similarity features, diversity and reasons.
    """

    ids: np.ndarray
    index: dict[str, int]
    titles: list[str | None]
    categories: list[list[str]]
    primary_category: list[str | None]
    price: np.ndarray
    in_stock: np.ndarray
    feature_names: list[str]
    features: np.ndarray
    category_counts: np.ndarray
    vectors: np.ndarray
    has_vector: np.ndarray
    materialized_at: object = None

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, item_ids: list[str]) -> np.ndarray:
        """Row of each id, -1 for ids not in the catalog."""
        # map over the bound get: no generator frame per id (about half the time)
        return np.fromiter(map(self.index.get, item_ids, repeat(-1, len(item_ids))), np.int64,
                           len(item_ids))

    @classmethod
    def load(
        cls,
        store: FeatureStore,
        catalog: pd.DataFrame,
        item_vectors: dict[str, np.ndarray],
        service: str,
        materialized_at: object = None,
    ) -> ItemTable:
        """Read every catalog item's online features of ``service`` in bulk."""
        ids = catalog["item_id"].astype(str).to_numpy(dtype=object)
        refs = entity_feature_refs(store, [service], "item_id")
        columns: dict[str, list] = {}
        for start in range(0, len(ids), READ_BATCH):
            batch = ids[start:start + READ_BATCH].tolist()
            chunk = online_entity_features(store, refs, "item_id", batch)
            for name, values in chunk.items():
                columns.setdefault(name, []).extend(values)
        return cls.from_columns(catalog, item_vectors, columns, materialized_at)

    @classmethod
    def from_columns(
        cls,
        catalog: pd.DataFrame,
        item_vectors: dict[str, np.ndarray],
        columns: dict[str, list],
        materialized_at: object = None,
    ) -> ItemTable:
        """The table of ``catalog`` with online feature ``columns`` (aligned with the catalog's
        rows; none at all gives a table without item features, ``materialized_at`` None)."""
        ids = catalog["item_id"].astype(str).to_numpy(dtype=object)
        scalar = [n for n in columns if n != "item_id" and n != CATEGORY_IDS
                  and not _is_list_column(columns[n])]
        features = np.full((len(ids), len(scalar)), np.nan, dtype=np.float32)
        for j, name in enumerate(scalar):
            features[:, j] = [np.nan if v is None else float(v) for v in columns[name]]
        category_ids = columns.get(CATEGORY_IDS, [None] * len(ids))
        n_vocab = 1 + max((max(c) for c in category_ids if c), default=-1)
        counts = np.zeros((len(ids), n_vocab), dtype=np.float32)
        for row, cats in enumerate(category_ids):
            if cats:
                counts[row, np.asarray(cats, dtype=np.int64)] = 1.0
        dim = len(next(iter(item_vectors.values()))) if item_vectors else 0
        vectors = np.zeros((len(ids), dim), dtype=np.float32)
        has_vector = np.zeros(len(ids), dtype=bool)
        for row, item_id in enumerate(ids):
            vec = item_vectors.get(item_id)
            if vec is not None:
                vectors[row], has_vector[row] = vec, True
        categories = [list(c) if c is not None else [] for c in catalog["categories"]]
        missing = int(np.isnan(features).all(axis=1).sum()) if scalar else 0
        logger.info("item table: %d items, %d scalar features, %d without online features",
                    len(ids), len(scalar), missing)
        return cls(
            ids=ids,
            index={item_id: row for row, item_id in enumerate(ids)},
            titles=catalog["title"].tolist(),
            categories=categories,
            primary_category=[c[0] if c else None for c in categories],
            price=catalog["price"].to_numpy(dtype=np.float64, na_value=np.nan),
            in_stock=catalog["in_stock"].fillna(False).astype(bool).to_numpy(),
            feature_names=scalar,
            features=features,
            category_counts=counts,
            vectors=vectors,
            has_vector=has_vector,
            materialized_at=materialized_at,
        )


def _is_list_column(values: list) -> bool:
    return any(isinstance(v, list | tuple | np.ndarray) for v in values if v is not None)


def item_views_materialized_at(store: FeatureStore, service: str) -> object:
    """End of the latest materialization of the item-keyed views of ``service`` (None before
    the first): an item table read before it is stale."""
    views = {ref.split(":")[0] for ref in entity_feature_refs(store, [service], "item_id")}
    ends = [end for view in views
            for _, end in store.get_feature_view(view).materialization_intervals]
    return max(ends, default=None)

"""Reading features through Feast FeatureServices: point in time for training, online for serving.

Both paths return one row per requested (user, item) pair with the service's features under
their full names (``view__feature``), so :func:`recsys.models.ranker.feature_matrix` sees the same
columns in training and in serving.
"""

from __future__ import annotations

import logging

import pandas as pd
from feast import FeatureStore

logger = logging.getLogger(__name__)


def _refs_by_join_keys(store: FeatureStore, service: str) -> dict[tuple[str, ...], list[str]]:
    """The service's feature references (``view:feature``), grouped by the views' join keys."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for projection in store.get_feature_service(service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        keys = tuple(sorted(view.join_keys))
        refs = [f"{projection.name_to_use()}:{f.name}" for f in projection.features]
        groups.setdefault(keys, []).extend(refs)
    return groups


def historical_features(
    store: FeatureStore, pairs: pd.DataFrame, as_of: pd.Timestamp, service: str
) -> pd.DataFrame:
    """Point-in-time features of ``pairs`` (``user_id``, ``item_id``) as known at ``as_of``.

    The service's views are joined per entity: each distinct user (and item) is looked up
    once, then the values are spread over the pairs, which is far cheaper than one lookup
    per pair (hundreds of candidates share a user).
    """
    result = pairs.reset_index(drop=True).copy()
    for keys, refs in _refs_by_join_keys(store, service).items():
        entity_df = result[list(keys)].drop_duplicates().reset_index(drop=True)
        entity_df["event_timestamp"] = as_of
        joined = store.get_historical_features(
            entity_df=entity_df, features=refs, full_feature_names=True
        ).to_df()
        feature_cols = [c for c in joined.columns if "__" in c]
        lookup = joined.drop_duplicates(list(keys)).set_index(list(keys))[feature_cols]
        index = pd.MultiIndex.from_frame(result[list(keys)]) if len(keys) > 1 else result[keys[0]]
        aligned = lookup.reindex(index)
        for column in feature_cols:
            result[column] = aligned[column].to_numpy()
    return result


def entity_feature_refs(store: FeatureStore, services: list[str], join_key: str) -> list[str]:
    """The references (``view:feature``) of ``services`` whose views are keyed by ``join_key``
    alone, deduplicated in order: e.g. every user feature the ranker and the context need."""
    refs: list[str] = []
    for service in services:
        for keys, group in _refs_by_join_keys(store, service).items():
            if keys == (join_key,):
                refs.extend(ref for ref in group if ref not in refs)
    return refs


def online_entity_features(
    store: FeatureStore, refs: list[str], join_key: str, ids: list[str]
) -> dict[str, list]:
    """One batched online read of ``refs`` for the entities ``ids``.

    Returns columns by full feature name (``view__feature``) plus ``join_key``, each a list
    aligned with ``ids``; a missing value is None.
    """
    return store.get_online_features(
        features=refs, entity_rows=[{join_key: i} for i in ids], full_feature_names=True
    ).to_dict()

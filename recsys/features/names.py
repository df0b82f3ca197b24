"""Names of the Feast objects the code refers to, taken from the ``feature_repo`` objects.

A view, feature, FeatureService or push source is named once, in
``feature_repo/definitions.py``; the batch tables, the training reads and the request path take
the names from here, and a feature that is renamed or dropped there fails at import, not at
the first request.
"""

from __future__ import annotations

from feast import FeatureView

from feature_repo import definitions as repo
from recsys.features.context import DAYPARTS, DEVICES


def full_name(view: FeatureView, feature: str) -> str:
    """``view__feature``, as Feast names a feature read with ``full_feature_names=True``."""
    if feature not in {f.name for f in view.features}:
        raise KeyError(f"feature view {view.name!r} has no feature {feature!r}")
    return f"{view.name}__{feature}"


USER_ACTIVITY = repo.user_activity.name
USER_HISTORY = repo.user_history.name
USER_RECENT = repo.user_recent.name
ITEM_STATS = repo.item_stats.name
USER_CANDIDATES = repo.user_candidates.name

#: The user's category affinity (``user_activity``), indexed by the catalog vocabulary.
AFFINITY = full_name(repo.user_activity, "category_affinity")
#: The item's category indices (``item_stats``) in the same vocabulary.
CATEGORY_IDS = full_name(repo.item_stats, "category_ids")
#: The user's latest items, most recent first (``user_recent``, pushed in real time).
RECENT_ITEMS = full_name(repo.user_recent, "recent_items")
RECENT_COUNT = full_name(repo.user_recent, "recent_event_count")
#: The item's share of events in each part of the day and on each device (its context profile).
DAYPART_SHARES = tuple(full_name(repo.item_stats, f"share_{part}") for part in DAYPARTS)
DEVICE_SHARES = tuple(full_name(repo.item_stats, f"share_{device}") for device in DEVICES)
#: Every item the user interacted with (``user_history``), for filtering.
SEEN_ITEMS = full_name(repo.user_history, "seen_items")

#: The model version and the packed candidates of the user's batch list (``user_candidates``).
CANDIDATES_MODEL = full_name(repo.user_candidates, "model_version")
CANDIDATE_BLOCK = full_name(repo.user_candidates, "candidate_block")

RANKER_SERVICE = repo.ranker_v2.name
CANDIDATES_SERVICE = repo.serving_candidates_v1.name
USER_CONTEXT_SERVICE = repo.user_context_v1.name
RECENT_PUSH_SOURCE = repo.user_recent_push.name


def feature_ref(name: str) -> str:
    """``view:feature``, Feast's reference, of a full name ``view__feature``."""
    return name.replace("__", ":", 1)


def short_name(name: str) -> str:
    """``feature`` of a full name ``view__feature`` (the column of the view's own table)."""
    return name.split("__", 1)[1]

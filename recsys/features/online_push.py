"""Real-time updates of the online store: each accepted event moves its item to the front of
the user's ``recent_items`` through Feast's push source.

The list is updated by :func:`~recsys.features.tables.merge_recent`, the function the daily
``user_recent`` table is computed with, so a user's online list equals the one the next
materialization writes for the same events.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode

from recsys.events.schema import Event
from recsys.features.names import (
    RECENT_COUNT,
    RECENT_ITEMS,
    RECENT_PUSH_SOURCE,
    feature_ref,
    short_name,
)
from recsys.features.reads import online_entity_features
from recsys.features.tables import RECENT_ITEMS_CAP, merge_recent

_RECENT_REFS = [feature_ref(RECENT_ITEMS), feature_ref(RECENT_COUNT)]


def push_recent(store: FeatureStore, events: Sequence[Event]) -> list[str]:
    """Push each user's new recent items (and event count); returns the users pushed.

    One batched online read of the users' current lists, one push. The caller serializes the
    pushes of a user (the service holds a Redis lock around each).
    """
    by_user: dict[str, list[Event]] = {}
    for event in sorted(events, key=lambda e: e.timestamp):
        by_user.setdefault(event.user_id, []).append(event)
    users = list(by_user)
    if not users:
        return []
    current = online_entity_features(store, _RECENT_REFS, "user_id", users)
    # Stamped with the time of the push, not of the events: Feast's Redis writer drops a row
    # no newer than the stored one, so event times would let a late batch (or one from a
    # producer whose clock runs ahead) undo or freeze later updates. Pushes of one user are
    # serialized by the caller, so these stamps only grow.
    pushed_at = pd.Timestamp.now(tz="UTC")
    rows = []
    for i, user_id in enumerate(users):
        recent = list(current[RECENT_ITEMS][i] or [])
        count = int(current[RECENT_COUNT][i] or 0)
        batch = by_user[user_id]
        latest = merge_recent(recent, [e.item_id for e in batch], RECENT_ITEMS_CAP)
        rows.append({
            "user_id": user_id,
            "event_timestamp": pushed_at,
            short_name(RECENT_ITEMS): latest,
            short_name(RECENT_COUNT): count + len(batch),
        })
    store.push(RECENT_PUSH_SOURCE, pd.DataFrame(rows), to=PushMode.ONLINE)
    return users

"""Feast objects of the platform, read top to bottom: entities, sources, views, services.

The offline tables under ``data/`` are written by the Dagster ``*_features`` assets (one row
per entity and UTC day, stamped at the end of that day). The FeatureServices are the one list
of features: training (``get_historical_features``) and serving (``get_online_features``)
both read through them. This module only declares objects; it has no side effects.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast.types import Array, Bytes, Float32, Int64, String
from feast.value_type import ValueType

# Entities: string ids, as in every event.
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING,
              description="A person receiving recommendations.")
item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING,
              description="A catalog item.")

# Batch sources: Parquet tables produced by the Dagster feature assets.
user_activity_source = FileSource(
    name="user_activity_source", path="data/user_activity.parquet",
    timestamp_field="event_timestamp",
)
user_history_source = FileSource(
    name="user_history_source", path="data/user_history.parquet",
    timestamp_field="event_timestamp",
)
item_stats_source = FileSource(
    name="item_stats_source", path="data/item_stats.parquet",
    timestamp_field="event_timestamp",
)
user_recent_source = FileSource(
    name="user_recent_source", path="data/user_recent.parquet",
    timestamp_field="event_timestamp",
)
user_candidates_source = FileSource(
    name="user_candidates_source", path="data/user_candidates.parquet",
    timestamp_field="event_timestamp",
)

# Push source: the service pushes each accepted event's effect on the user in real time;
# the batch table is the same signal recomputed daily from the event log.
user_recent_push = PushSource(name="user_recent_push", batch_source=user_recent_source)

user_activity = FeatureView(
    name="user_activity",
    entities=[user],
    ttl=timedelta(days=0),  # windows are recomputed daily; a stale row is still the best known
    schema=[
        Field(name="events_7d", dtype=Float32, description="Events in the last 7 days."),
        Field(name="events_30d", dtype=Float32, description="Events in the last 30 days."),
        Field(name="events_total", dtype=Float32, description="Events since the first one."),
        Field(name="purchases_30d", dtype=Float32, description="Purchases, last 30 days."),
        Field(name="mean_rating", dtype=Float32, description="Mean explicit rating (NaN: none)."),
        Field(name="days_since_last", dtype=Float32, description="Days since the last event."),
        Field(name="category_affinity", dtype=Array(Float32),
              description="Share of weighted interactions per category (catalog vocabulary)."),
    ],
    source=user_activity_source,
    online=True,
)

user_history = FeatureView(
    name="user_history",
    entities=[user],
    ttl=timedelta(days=0),
    schema=[
        Field(name="seen_items", dtype=Array(String),
              description="Items the user interacted with (most recent first, capped)."),
    ],
    source=user_history_source,
    online=True,
)

user_recent = FeatureView(
    name="user_recent",
    entities=[user],
    ttl=timedelta(days=0),
    schema=[
        Field(name="recent_items", dtype=Array(String),
              description="Last items the user interacted with, most recent first."),
        Field(name="recent_event_count", dtype=Int64,
              description="Events counted into recent_items since the last daily snapshot."),
    ],
    source=user_recent_push,
    online=True,
)

item_stats = FeatureView(
    name="item_stats",
    entities=[item],
    ttl=timedelta(days=0),
    schema=[
        Field(name="popularity_7d", dtype=Float32, description="Distinct users, last 7 days."),
        Field(name="popularity_30d", dtype=Float32, description="Distinct users, last 30 days."),
        Field(name="popularity_total", dtype=Float32, description="Distinct users, all time."),
        Field(name="trend", dtype=Float32,
              description="(popularity_7d + 1) / (users in the 7 days before + 1)."),
        Field(name="mean_rating", dtype=Float32, description="Mean explicit rating (NaN: none)."),
        Field(name="price", dtype=Float32, description="Catalog price (NaN: unknown)."),
        Field(name="in_stock", dtype=Int64, description="1 when the item can be recommended."),
        Field(name="age_days", dtype=Float32, description="Days since the item was created."),
        Field(name="category_ids", dtype=Array(Int64),
              description="Indices of the item's categories in the catalog vocabulary."),
        # The item's time-of-day and device profile (recsys.features.context).
        *[Field(name=f"share_{part}", dtype=Float32,
                description=f"Share of the item's events in the {part} (UTC), smoothed.")
          for part in ("night", "morning", "afternoon", "evening")],
        *[Field(name=f"share_{device}", dtype=Float32,
                description=f"Share of the item's events on a {device}, smoothed.")
          for device in ("mobile", "desktop", "tablet", "tv")],
    ],
    source=item_stats_source,
    online=True,
)

# Written straight to the online store by the Dagster ``candidate_lists`` asset for the
# champion (never materialized from its source): the lists are a model's output, not data.
user_candidates = FeatureView(
    name="user_candidates",
    entities=[user],
    ttl=timedelta(days=0),
    schema=[
        Field(name="model_version", dtype=String,
              description="Registered model version whose candidate generators made the list."),
        Field(name="candidate_block", dtype=Bytes,
              description="The merged candidates, packed (recsys.models.candidate_lists)."),
    ],
    source=user_candidates_source,
    online=True,
)

# Versioned feature services: bump the suffix when the list changes, never edit in place.
ranker_v1 = FeatureService(
    name="ranker_v1",
    features=[user_activity, user_recent, item_stats[[
        "popularity_7d", "popularity_30d", "popularity_total", "trend", "mean_rating", "price",
        "in_stock", "age_days", "category_ids"]]],
    description="Features of the LightGBM ranker before the items' context profile.",
)
ranker_v2 = FeatureService(
    name="ranker_v2",
    features=[user_activity, user_recent, item_stats],
    description="Features of the LightGBM ranker, for training and serving alike; the "
                "request's context (recsys.features.context) joins them at ranking time.",
)
user_context_v1 = FeatureService(
    name="user_context_v1",
    features=[user_history, user_recent],
    description="What the service needs to filter seen items and explain recommendations.",
)
serving_candidates_v1 = FeatureService(
    name="serving_candidates_v1",
    features=[user_candidates],
    description="Each user's candidates computed in batch, read with the user's features.",
)

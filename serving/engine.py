"""The request path of the service: features → candidates → rank → filter → explain.

Plain Python over the loaded :class:`training.recommender.Recommender` and a Feast store, so
it is tested without HTTP. Every degradation is deliberate: an unknown user, missing
features or an unreachable online store give the popularity list flagged as a fallback.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode

from serving.schemas import RecommendedItem, RecommendResponse
from training.event_log import EventLog
from training.recommender import Recommender
from training.retrieval import online_features, online_user_context
from training.schema import Event

logger = logging.getLogger(__name__)

USER_CONTEXT_SERVICE = "user_context_v1"
PUSH_SOURCE = "user_recent_push"
RECENT_ITEMS = "user_recent__recent_items"
SEEN_ITEMS = "user_history__seen_items"
RECENT_CAP = 20


@dataclass
class Engine:
    """Serves recommendations from one model version; swap the whole engine to change it."""

    recommender: Recommender
    store: FeatureStore
    model_version: str
    event_log: EventLog

    def __post_init__(self) -> None:
        catalog = self.recommender.catalog.set_index("item_id")
        self._titles = catalog["title"].to_dict()
        self._categories = catalog["categories"].map(list).to_dict()
        self._out_of_stock = set(catalog.index[~catalog["in_stock"].astype(bool)])
        self._popular = self.recommender.popular_items(200)
        self._service = str(self.recommender.manifest.get("feature_service", "ranker_v1"))

    def recommend(self, user_id: str, n: int) -> RecommendResponse:
        """Top ``n`` items for ``user_id``; the popularity fallback when it cannot rank."""
        start = time.perf_counter()
        try:
            context = online_user_context(self.store, user_id, USER_CONTEXT_SERVICE)
        except Exception as exc:  # the online store is down: degrade, never fail the request
            logger.warning("online store unavailable: %s", exc)
            return self._fallback(user_id, n, set(), "online store unavailable", start)
        recent = list(context.get(RECENT_ITEMS) or [])
        seen = set(context.get(SEEN_ITEMS) or []) | set(recent)
        frame = self.recommender.candidates.candidates([user_id])
        if frame.empty:
            return self._fallback(user_id, n, seen, "unknown user", start)
        frame = frame[~frame["item_id"].isin(seen | self._out_of_stock)].reset_index(drop=True)
        if frame.empty:
            return self._fallback(user_id, n, seen, "no unseen candidate", start)
        try:
            item_ids = frame["item_id"].tolist()
            features = online_features(self.store, user_id, item_ids, self._service)
        except Exception as exc:
            logger.warning("online features unavailable: %s", exc)
            return self._fallback(user_id, n, seen, "online store unavailable", start)
        joined = frame.join(features.drop(columns=["user_id", "item_id"]))
        scores = self.recommender.score(joined)
        order = np.argsort(-scores, kind="stable")[:n]
        items = [
            self._item(joined["item_id"].iat[i], float(scores[i]), recent) for i in order
        ]
        return self._response(user_id, items, start)

    def record(self, events: Sequence[Event]) -> int:
        """Append events durably to the log, then push each user's recent items online.

        Returns the number of users pushed. The log append comes first: an acknowledged
        event is never lost even if the push fails.
        """
        self.event_log.append_records(events)
        by_user: dict[str, list[Event]] = {}
        for event in sorted(events, key=lambda e: e.timestamp):
            by_user.setdefault(event.user_id, []).append(event)
        rows = []
        for user_id, user_events in by_user.items():
            context = online_user_context(self.store, user_id, USER_CONTEXT_SERVICE)
            recent = list(context.get(RECENT_ITEMS) or [])
            count = int(context.get("user_recent__recent_event_count") or 0)
            for event in user_events:
                recent = [event.item_id] + [i for i in recent if i != event.item_id]
            rows.append({
                "user_id": user_id,
                "event_timestamp": pd.Timestamp(user_events[-1].timestamp),
                "recent_items": recent[:RECENT_CAP],
                "recent_event_count": count + len(user_events),
            })
        self.store.push(PUSH_SOURCE, pd.DataFrame(rows), to=PushMode.ONLINE)
        return len(rows)

    def _item(self, item_id: str, score: float, recent: list[str]) -> RecommendedItem:
        return RecommendedItem(
            item_id=item_id, score=score, title=self._titles.get(item_id),
            categories=self._categories.get(item_id, []), reason=self._reason(item_id, recent),
        )

    def _reason(self, item_id: str, recent: list[str]) -> str:
        """"Because you liked X" for the most similar recent item, else the top category."""
        vectors = self.recommender.item_vectors()
        vec = vectors.get(item_id)
        if vec is not None:
            known = [r for r in recent if r in vectors]
            if known:
                best = max(known, key=lambda r: float(vectors[r] @ vec))
                return f"because you interacted with {self._titles.get(best, best)}"
        categories = self._categories.get(item_id) or []
        return f"popular in {categories[0]}" if categories else "popular right now"

    def _fallback(self, user_id: str, n: int, seen: set[str], why: str,
                  start: float) -> RecommendResponse:
        items = [
            RecommendedItem(
                item_id=item_id, score=float(len(self._popular) - rank),
                title=self._titles.get(item_id), categories=self._categories.get(item_id, []),
                reason="popular right now",
            )
            for rank, item_id in enumerate(i for i in self._popular if i not in seen)
        ][:n]
        return self._response(user_id, items, start, fallback_reason=why)

    def _response(self, user_id: str, items: list[RecommendedItem], start: float,
                  fallback_reason: str | None = None) -> RecommendResponse:
        return RecommendResponse(
            user_id=user_id, items=items, model_version=self.model_version,
            fallback=fallback_reason is not None, fallback_reason=fallback_reason,
            latency_ms=round((time.perf_counter() - start) * 1000, 3),
        )

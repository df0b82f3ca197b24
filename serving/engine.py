"""The request path of one model version: user features → candidates → filter → rank →
re-rank → explain.

Plain Python over the loaded :class:`recsys.models.recommender.Recommender`, the in-process
:class:`~recsys.features.item_table.ItemTable` and a Feast store, so it is tested without HTTP. A
request makes one online read (the user's features, through the FeatureServices, in one
Redis command: :mod:`recsys.features.online_reader`); every other input is in memory. The
read carries the user's candidates, computed in batch for the model version serving
(:mod:`recsys.models.candidate_lists`); the items the user met since (``recent_event_count``
of ``recent_items``, pushed as events arrive) add their session's candidates, and a list of
another version (or none) is retrieved online. A user the model never saw is served from
the items of their session (pushed through Feast as they happen) once there are any.
Every degradation is deliberate: an unknown user without a session, missing features or an
unreachable online store give the popularity list flagged as a fallback.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from feast import FeatureStore

from recsys.features.context import cache_part
from recsys.features.item_table import ItemTable
from recsys.features.names import (
    AFFINITY,
    CANDIDATE_BLOCK,
    CANDIDATES_MODEL,
    CANDIDATES_SERVICE,
    RANKER_SERVICE,
    RECENT_COUNT,
    RECENT_ITEMS,
    SEEN_ITEMS,
    USER_CONTEXT_SERVICE,
)
from recsys.features.online_reader import EntityFeatureReader
from recsys.features.reads import entity_feature_refs
from recsys.models.candidate_lists import decode_block
from recsys.models.exploration import (
    EXPLORE_SLOTS,
    NEW_ITEMS_GENERATOR,
    explore,
    new_candidates,
)
from recsys.models.reasons import POPULAR, Reason, ReasonFinder
from recsys.models.recommender import Recommender
from recsys.models.retrieval import CandidateRetriever, Candidates
from recsys.models.scoring import CandidateScorer
from serving.breaker import Breaker
from serving.metrics import FALLBACKS, stage
from serving.reranking import rerank
from serving.schemas import RecommendResponse

logger = logging.getLogger(__name__)

_POPULAR = Reason("popular right now", POPULAR)
_RANDOM = Reason("drawn at random (an experiment's broken-ranking drill)", "random")


@dataclass(frozen=True)
class Query:
    """What a request asks for; :meth:`cache_key` names it in the response cache.

    ``arm`` is the experiment arm (model alias) serving it, None outside experiments.
    """

    user_id: str
    n: int = 10
    kind: str = "personalized"
    categories: frozenset[str] = frozenset()
    max_price: float | None = None
    diversity: float = 0.0
    max_per_category: int = 0
    experiment_id: str | None = None
    arm: str | None = None
    shuffle: bool = False  # draw from the catalog at random (an experiment's broken variant)
    explain: bool = False  # add the ranker's top feature contributions to each item
    # the request's context inputs (recsys.features.context.request_context), as pairs
    context: tuple[tuple[str, float], ...] = ()

    def cache_key(self, model_version: str) -> str:
        cats = ",".join(sorted(self.categories))
        return (f"{model_version}:{self.kind}:{self.n}:{cats}:{self.max_price}:"
                f"{self.diversity}:{self.max_per_category}:{self.experiment_id}:{self.arm}"
                f"{':shuffle' if self.shuffle else ''}{':explain' if self.explain else ''}"
                f":{cache_part(dict(self.context))}")


@dataclass
class Engine:
    """Serves recommendations from one model version; swap the whole engine to change it."""

    recommender: Recommender
    store: FeatureStore
    model_version: str
    items: ItemTable
    breaker: Breaker = field(default_factory=Breaker)
    compiled_dir: Path | None = None  # where the compiled ranker is cached; None: LightGBM
    approximate_from: int = 100_000  # catalog size from which ALS retrieval uses faiss IVF
    explore_slots: int = EXPLORE_SLOTS  # places per list for new items (content candidates)

    def __post_init__(self) -> None:
        self.ranker_service = str(self.recommender.manifest.get("feature_service", RANKER_SERVICE))
        services = [self.ranker_service, USER_CONTEXT_SERVICE]
        if CANDIDATES_SERVICE in {s.name for s in self.store.list_feature_services()}:
            services.append(CANDIDATES_SERVICE)  # absent from registries applied before it
        self.user_refs = entity_feature_refs(self.store, services, "user_id")
        self.user_reader = EntityFeatureReader(self.store, self.user_refs, "user_id")
        self.retriever = CandidateRetriever(self.recommender.candidates, self.items,
                                            self.approximate_from)
        self.scorer = CandidateScorer(self.recommender, self.items, self.compiled_dir)
        self.reasons = ReasonFinder(self.recommender.candidates, self.items)
        popular = self.items.positions(self.recommender.popular_items(500))
        self._popular = popular[popular >= 0]
        # What a response states of an item, as Python objects, built once per item table
        self._item_ids = [str(i) for i in self.items.ids.tolist()]
        self._prices = [None if p != p else p for p in self.items.price.astype(float).tolist()]

    def recommend(self, query: Query, timings: dict[str, float] | None = None,
                  features: list | None = None) -> RecommendResponse:
        """Top ``query.n`` items for the user; the popularity fallback when it cannot rank.

        ``features`` is the user's feature hash if the caller already read it
        (:meth:`EntityFeatureReader.hash_read`); otherwise the engine reads it.
        """
        start = time.perf_counter()
        timings = {} if timings is None else timings
        with stage("user_features", timings):
            user = (self._user_features(query.user_id) if features is None
                    else self.user_reader.decode(features))
        if user is None:
            return self._fallback(query, np.empty(0, np.int64), "online store unavailable", start)
        recent = list(user.get(RECENT_ITEMS) or [])
        history = recent + list(user.get(SEEN_ITEMS) or [])  # most recent first
        seen = self.items.positions(history)
        if query.kind == "popular":
            return self._fallback(query, seen, None, start)
        if query.shuffle:
            return self._random(query, seen, start)
        with stage("candidates", timings):
            candidates = self._candidates(query.user_id, user, recent)
        if not len(candidates):
            return self._fallback(query, seen, "unknown user", start)
        with stage("filter", timings):
            candidates = candidates.subset(self._allowed(candidates.rows, seen, query))
        if not len(candidates):
            return self._fallback(query, seen, "no candidate passes the filters", start)
        with stage("rank", timings):
            context = dict(query.context)
            scores, inputs = self.scorer.rank(candidates, user, context, seen[:len(recent)])
        with stage("rerank", timings):
            order = np.argsort(-scores, kind="stable")
            picked = rerank(self.items, candidates.rows, scores, query.n, query.diversity,
                            query.max_per_category, order)
            plain = query.diversity <= 0.0 and not query.max_per_category  # picked: order[:n]
            picked = self._explore(candidates, scores, picked, query.n, order if plain else None)
        with stage("explain", timings):  # reasons and the response model
            listed = candidates.subset(picked)
            reasons = self.reasons.explain(query.user_id, listed.rows, listed.columns,
                                           history, user.get(AFFINITY), seen)
            contributions = (self.scorer.contributions(inputs[picked]) if query.explain
                             and inputs is not None else None)
            return self._response(query, listed.rows, scores[picked], reasons, start,
                                  contributions=contributions)

    def _explore(self, candidates: Candidates, scores: np.ndarray, picked: np.ndarray,
                 n: int, order: np.ndarray | None = None) -> np.ndarray:
        """``picked`` holding :attr:`explore_slots` new items where there are as many, and no
        more (:func:`~recsys.models.exploration.explore` over the picked, then the others
        by score); ``order`` is every candidate in that order when the caller has it (the
        stable order by score, when ``picked`` are its first)."""
        is_new = new_candidates(candidates.columns, len(candidates))
        if not is_new.any():
            return picked
        if order is None:
            unpicked = np.ones(len(candidates), dtype=bool)  # a mask: cheaper than setdiff1d
            unpicked[picked] = False
            rest = np.flatnonzero(unpicked)
            order = np.concatenate([picked, rest[np.argsort(-scores[rest], kind="stable")]])
        return explore(order, is_new, candidates.columns[f"{NEW_ITEMS_GENERATOR}_rank"], n,
                       self.explore_slots)

    def _user_features(self, user_id: str) -> dict[str, object] | None:
        """Every user feature of the ranker and context services in one online read."""
        if not self.breaker.allow():
            return None
        try:
            features = self.user_reader.read(user_id)
        except Exception as exc:  # the online store is down: degrade, never fail the request
            logger.warning("online store unavailable: %s", exc)
            self.breaker.failed()
            return None
        self.breaker.succeeded()
        return features

    def _candidates(self, user_id: str, user: dict[str, object],
                    recent: list[str]) -> Candidates:
        """The user's batch list (retrieved online when it is not this version's) with the
        candidates of the items met since; a new user's session candidates."""
        block = user.get(CANDIDATE_BLOCK)
        if block and user.get(CANDIDATES_MODEL) == self.model_version:
            candidates = decode_block(block, self.retriever.union.names)  # type: ignore[arg-type]
        else:
            candidates = self.retriever.retrieve(user_id)
        if not len(candidates):  # a new user: what their session viewed
            return self.retriever.retrieve_session(recent) if recent else candidates
        fresh = recent[:int(user.get(RECENT_COUNT) or 0)]  # type: ignore[call-overload]
        if fresh:
            candidates = candidates.merged_with(self.retriever.retrieve_session(fresh))
        return candidates

    def _allowed(self, rows: np.ndarray, seen: np.ndarray, query: Query) -> np.ndarray:
        blocked = np.zeros(len(self.items), dtype=bool)  # a mask: cheaper than np.isin
        blocked[seen[seen >= 0]] = True
        keep = self.items.in_stock[rows] & ~blocked[rows]
        if query.max_price is not None:
            keep &= self.items.price[rows] <= query.max_price
        if query.categories:
            cats = self.items.categories
            keep &= np.fromiter((not query.categories.isdisjoint(cats[r]) for r in rows.tolist()),
                                bool, len(rows))
        return keep

    def _fallback(self, query: Query, seen: np.ndarray, why: str | None,
                  start: float) -> RecommendResponse:
        if why is not None:
            FALLBACKS.labels(reason=why).inc()
        rows = self._popular[self._allowed(self._popular, seen, query)][:query.n]
        scores = np.arange(len(self._popular), len(self._popular) - len(rows), -1, dtype=float)
        reasons = [_POPULAR] * len(rows)
        return self._response(query, rows, scores, reasons, start, fallback_reason=why)

    def _random(self, query: Query, seen: np.ndarray, start: float) -> RecommendResponse:
        """A list drawn uniformly from the allowed catalog: a model that ranks at random
        (an experiment's deliberately broken variant, to drill the automatic rollback)."""
        allowed = self._popular[self._allowed(self._popular, seen, query)]
        rows = np.random.default_rng().permutation(allowed)[:query.n]
        return self._response(query, rows, np.zeros(len(rows)), [_RANDOM] * len(rows), start)

    def _response(self, query: Query, rows: np.ndarray, scores: np.ndarray,
                  reasons: list[Reason], start: float, fallback_reason: str | None = None,
                  contributions: list[list[dict[str, object]]] | None = None,
                  ) -> RecommendResponse:
        items = self.items
        explained = contributions or [None] * len(rows)
        # one validation of plain values (in pydantic-core), not a model per item
        return RecommendResponse.model_validate({
            "user_id": query.user_id,
            "items": [
                {"item_id": self._item_ids[r], "score": s, "title": items.titles[r],
                 "categories": items.categories[r], "price": self._prices[r],
                 "reason": why.text, "reason_kind": why.kind, "reason_item_id": why.item_id,
                 "contributions": top}
                for r, s, why, top in zip(rows.tolist(),
                                          np.asarray(scores, dtype=float).tolist(),
                                          reasons, explained, strict=True)
            ],
            "model_version": self.model_version,
            "fallback": fallback_reason is not None, "fallback_reason": fallback_reason,
            "experiment_id": query.experiment_id, "variant": query.arm,
            "latency_ms": round((time.perf_counter() - start) * 1000, 3),
        })

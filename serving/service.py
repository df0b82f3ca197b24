"""The BentoML service: ``bentoml serve serving.service:RecommendationService``.

``POST /recommend`` is a BentoML API; the REST paths (``/api/v1/recs/...``, ``POST /events``,
``/health``) come from a FastAPI app mounted in the service, sharing the loaded engine.
Responses go through a per-user Redis cache; the engine follows the MLflow champion alias.
BentoML adds ``/metrics`` (Prometheus) and ``/docs``.
"""

import dataclasses
import json
import logging
import time
from functools import lru_cache
from typing import Annotated, Any, NamedTuple

import bentoml
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsys.events.event_log import EventLog
from recsys.events.impressions import ImpressionLog
from recsys.events.schema import Context, EventBatch, Identifier
from recsys.events.stream import open_event_stream
from recsys.features.context import request_context
from recsys.features.names import RECENT_ITEMS, feature_ref
from recsys.features.online_reader import EntityFeatureReader
from recsys.platform.redis_server import REDIS_ERRORS, resolve_redis
from recsys.platform.settings import get_settings
from serving import engine as request_path
from serving.access import AccessMiddleware, get_access, secure_openapi
from serving.breaker import Breaker
from serving.cache import Lookup, ResponseCache
from serving.config import get_serving_settings
from serving.endpoint_labels import label_endpoints_by_route
from serving.engine import Engine
from serving.experiment_api import get_store
from serving.experiment_api import router as experiments_router
from serving.experiments import ExperimentTable, assign
from serving.fast_recs import FastRecs
from serving.gc_pauses import freeze_heap, install_timeout_fix
from serving.impressions import ImpressionRecorder, new_rec_id
from serving.intake import EventIntake
from serving.metrics import CACHE, EXPERIMENT_REQUESTS, REQUEST_SECONDS, stage
from serving.model_store import ModelHolder
from serving.native_threads import limit_loaded_pools
from serving.pages import mount_pages
from serving.rate_limits import Fold
from serving.registry_view import UnknownModelVersionError, get_version, list_versions
from serving.retrain import DagsterUnavailableError, RetrainRunningError, launch_retrain
from serving.schemas import (
    MAX_CATEGORY_FILTERS,
    CategoryName,
    EventsBody,
    EventsResponse,
    ModelsResponse,
    ModelVersionInfo,
    RecommendFilters,
    RecommendResponse,
    RecsType,
    TrainResponse,
)

logger = logging.getLogger(__name__)

app = FastAPI(title="Recommendation API", version="1")
#: FastAPI's words for a body it cannot read at all (fastapi/routing.py), such as one that is
#: not UTF-8: it answers 400, which no operation documents.
UNREADABLE_BODY = "There was an error parsing the body"


@app.exception_handler(StarletteHTTPException)  # what FastAPI raises there
async def _unreadable_body_is_bad_input(request: Request,
                                        exc: StarletteHTTPException) -> Response:
    """A body that cannot be read is bad input like any other: 422 with what was wrong, in
    the shape of the schema's own errors (``json_invalid``, as for a body that is not JSON)."""
    if exc.status_code == 400 and exc.detail == UNREADABLE_BODY:
        return JSONResponse(status_code=422, content={"detail": [
            {"type": "json_invalid", "loc": ["body"], "input": None,
             "msg": "The body cannot be read: it is not UTF-8 encoded JSON"}]})
    return await http_exception_handler(request, exc)



async def _current_service() -> object:
    """BentoML's ``get_current_service`` as a coroutine: the routes' ``self`` dependency
    is then resolved on the event loop, not handed to a thread and back per request."""
    return bentoml.get_current_service()


# BentoML gives each class-view route ``self`` through ``Depends(get_current_service)``, a
# plain function FastAPI runs in its thread pool: two thread hops a request with the route's.
app.dependency_overrides[bentoml.get_current_service] = _current_service
app.include_router(experiments_router)  # before /api/v1/recs/{user_id}, which would match
install_timeout_fix()


class Prepared(NamedTuple):
    """A request looked up (:meth:`RecommendationService.look_up`): when it started
    (``perf_counter``), its engine and routed query, its cache variant and what Redis said."""

    start: float
    engine: Engine
    query: request_path.Query
    key: str
    found: Lookup


@lru_cache(maxsize=8)
def _outcome_series(result: str) -> Any:
    return CACHE.labels(result=result)


@lru_cache(maxsize=8)
def _latency_series(outcome: str) -> Any:
    return REQUEST_SECONDS.labels(outcome=outcome)


class BadInputAs422:
    """ASGI middleware: BentoML answers invalid API bodies with 400; HTTP says 422."""

    def __init__(self, app, paths: tuple[str, ...] = ("/recommend",)):  # noqa: ANN001
        self.app, self.paths = app, set(paths)

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)

        async def send_422(message):  # noqa: ANN001
            if message["type"] == "http.response.start" and message["status"] == 400:
                message = {**message, "status": 422}
            await send(message)

        return await self.app(scope, receive, send_422)


# BentoML's OpenTelemetry middleware opens a span for every request; its sample rate is 0
# unless configured, so none is recorded, yet building them cost the plain list request
# (serving/fast_recs.py) about a sixth of its framework CPU (py-spy, README Benchmarks).
# That request is left out of tracing; every other route keeps its spans.
PLAIN_RECS_URL = r"/api/v1/recs/(?!models|experiments|train)[^/?]+(\?limit=\d{1,3})?$"


@bentoml.service(name="recommendations", traffic={"timeout": 30},
                 workers=get_serving_settings().workers,
                 tracing={"excluded_urls": [PLAIN_RECS_URL]})
@bentoml.asgi_app(app, path="/")
class RecommendationService:
    """Personalized recommendations from the MLflow champion and Feast's online store."""

    def __init__(self) -> None:
        get_access().authenticator.require_credentials()  # secure by default
        limit_loaded_pools()  # one native thread per pool in each worker
        self.settings, self.serving = get_settings(), get_serving_settings()
        self.redis_url = resolve_redis(self.settings).url
        # Reads (cache lookups, features) and writes (cache puts, pushes) trip apart.
        breaker = Breaker(self.serving.redis_retry_seconds)
        write_breaker = Breaker(self.serving.redis_retry_seconds)
        self.experiments = ExperimentTable(get_store(), self.serving.experiment_refresh_seconds)
        self.models = ModelHolder(self.settings, self.serving, breaker,
                                  extra_arms=self.experiments.models)
        # On a Redis Cluster a user's cached lists live in the slot of their online row.
        rows = EntityFeatureReader(self.models.store, [feature_ref(RECENT_ITEMS)], "user_id")
        self.cache = ResponseCache(self.redis_url, self.serving.cache_ttl_seconds, breaker,
                                   write_breaker=write_breaker,
                                   timeout=self.serving.redis_timeout_seconds,
                                   write_behind=True,
                                   linger=self.serving.cache_write_linger_seconds,
                                   row_key=rows.row_key)
        self.intake = EventIntake(EventLog(self.settings.event_log_dir), self.models.store,
                                  write_breaker, self.cache, self.settings.push_outbox_dir,
                                  stream=open_event_stream(self.settings, timeout=1.0),
                                  impression_log=ImpressionLog(self.settings.impression_log_dir))
        # Impressions take the events' path (the log, or the shared stream), off the request's.
        self.impressions = (ImpressionRecorder(self.intake.accept_impressions)
                            if self.serving.impressions else None)
        self._shared_readers: dict[int, tuple[EntityFeatureReader, bool]] = {}
        self.models.start()
        freeze_heap()

    def look_up(self, query: request_path.Query, limits: Fold | None = None) -> Prepared:
        """Route ``query`` to its engine and look it up: the cached body, or on a miss the
        user's online features, with the request's rate limits (``limits``, left unchecked
        by :class:`AccessMiddleware`) checked first, all in one round trip to Redis."""
        start = time.perf_counter()
        engine, query = self.engine_for(query)
        key = query.cache_key(engine.model_version)
        # the user's features come in the cache lookup's round trip when Redis is shared
        reader = engine.user_reader
        along = reader.hash_read(query.user_id) if self._shares(reader) else None
        with stage("lookup", {}):  # the limits, the cache, the user's features on a miss
            found = self.cache.lookup(query.user_id, key, along, limits)
        return Prepared(start, engine, query, key, found)

    def _shares(self, reader: EntityFeatureReader) -> bool:
        shared = self._shared_readers.get(id(reader))
        if shared is None or shared[0] is not reader:
            shared = self._shared_readers[id(reader)] = (
                reader, reader.shares_server(self.cache.client))
        return shared[1]

    def answer(self, query: request_path.Query, prepared: Prepared | None = None) -> bytes:
        """The JSON body for ``query``: from the cache, else computed (and then cached);
        ``prepared`` is its :meth:`look_up` when done already."""
        start, engine, query, key, found = prepared or self.look_up(query)
        served: object  # what the impression is read from: the cached body, or the response
        if found.body is not None:
            body = served = found.body
            _outcome_series("hit").inc()
            outcome = "cached"
        else:
            _outcome_series("miss").inc()
            try:
                response = served = engine.recommend(query, features=found.features)
            except Exception:  # an error counts against its variant's error-rate guardrail
                self.record_error(query, start)
                raise
            with stage("serialize", {}):
                body = response.model_dump_json(
                    exclude={"cached", "latency_ms", "rec_id"}).encode()
            if not response.fallback:
                self.cache.put(query.user_id, key, found.gen, body)
            outcome = "fallback" if response.fallback else "ranked"
        elapsed = time.perf_counter() - start
        _latency_series(outcome).observe(elapsed)
        rec_id = new_rec_id()
        if self.impressions is not None:
            self.impressions.record(rec_id, time.time(), served, elapsed * 1000)
        tail = b',"cached":%s,"latency_ms":%.3f,"rec_id":"%s"}' % (
            b"true" if outcome == "cached" else b"false", elapsed * 1000, rec_id.encode())
        return body[:-1] + tail

    def record_error(self, query: request_path.Query, start: float) -> None:
        """Log a failed request as an impression of nothing, flagged as an error."""
        if self.impressions is None:
            return
        body = json.dumps({"user_id": query.user_id, "items": [], "error": True,
                           "experiment_id": query.experiment_id, "variant": query.arm})
        self.impressions.record(new_rec_id(), time.time(), body.encode(),
                                (time.perf_counter() - start) * 1000)

    def engine_for(self, query: request_path.Query) -> tuple[Engine, request_path.Query]:
        """The engine of the query's experiment variant (the champion's outside experiments),
        and the query stamped with that variant and its serving configuration."""
        routed = self.experiments.route(query.experiment_id, query.user_id)
        if routed is not None:
            experiment, variant = routed
            model = variant.model_alias or variant.model_version
            engine = self.models.engine_for(model)[0] if model else self.models.engine
            EXPERIMENT_REQUESTS.labels(experiment=experiment.experiment_id,
                                       variant=variant.name).inc()
            return engine, dataclasses.replace(
                query, experiment_id=experiment.experiment_id, arm=variant.name,
                kind=variant.kind or query.kind, shuffle=variant.shuffle,
                diversity=query.diversity if variant.diversity is None else variant.diversity)
        experiment = query.experiment_id or ""
        arms = self.serving.experiments.get(experiment)
        if not arms:
            return self.models.engine, query
        engine, alias = self.models.engine_for(assign(experiment, query.user_id, arms))
        EXPERIMENT_REQUESTS.labels(experiment=experiment, variant=alias).inc()
        return engine, dataclasses.replace(query, arm=alias)

    def query(self, user_id: str, n: int, kind: str = "personalized",
              filters: RecommendFilters | None = None, diversity: float | None = None,
              max_per_category: int | None = None,
              experiment_id: str | None = None, explain: bool = False,
              context: Context | None = None) -> request_path.Query:
        filters = filters or RecommendFilters()
        moment = request_context(context or {})
        return request_path.Query(
            user_id=user_id, n=n, kind=kind, categories=frozenset(filters.categories or ()),
            max_price=filters.max_price,
            diversity=self.serving.diversity if diversity is None else diversity,
            max_per_category=(self.serving.max_per_category if max_per_category is None
                              else max_per_category),
            experiment_id=experiment_id, explain=explain, context=tuple(moment.items()),
        )

    @bentoml.api(route="/recommend")
    def recommend(
        self,
        user_id: Identifier,
        num_items: Annotated[int, Field(ge=1, le=100)] = 10,
        context: Context | None = None,
        filters: RecommendFilters | None = None,
        diversity: Annotated[float | None, Field(ge=0, le=1)] = None,
        max_per_category: Annotated[int | None, Field(ge=0)] = None,
        experiment_id: Annotated[str | None, Field(max_length=128)] = None,
        explain: bool = False,
    ) -> RecommendResponse:
        """Top ``num_items`` for ``user_id`` (popular items, flagged, for unknown users);
        ``explain`` adds the ranker's top feature contributions to each item."""
        query = self.query(user_id, num_items, filters=filters, diversity=diversity,
                           max_per_category=max_per_category, experiment_id=experiment_id,
                           explain=explain, context=context)
        # The body is already JSON (cached or just serialized): BentoML passes a Response
        # through, so it is not parsed back into the model only to be serialized again.
        return Response(self.answer(query), media_type="application/json")  # type: ignore[return-value]

    @app.get("/api/v1/recs/models", response_model=ModelsResponse)
    def models_list(self) -> ModelsResponse:
        serving = self.models.engine.model_version
        versions = list_versions(self.settings.tracking_uri, self.settings.model_name, serving)
        return ModelsResponse(name=self.settings.model_name, serving_version=serving,
                              versions=versions)

    @app.get("/api/v1/recs/models/{version}", response_model=ModelVersionInfo,
             responses={404: {"description": "No such version or alias."}})
    def model_version(self, version: str) -> ModelVersionInfo:
        try:
            return get_version(self.settings.tracking_uri, self.settings.model_name, version,
                               self.models.engine.model_version)
        except UnknownModelVersionError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    @app.post("/api/v1/recs/train", response_model=TrainResponse, status_code=202,
              responses={409: {"description": "A retraining run is in progress already."}})
    def train(self) -> TrainResponse:
        """Start the Dagster retrain job (one at a time: 409 with the running run's id while
        one is queued or running); 503 when the Dagster webserver is unreachable."""
        # The lock makes check-then-launch atomic across workers and replicas.
        lock = self.cache.client.lock("recsys:lock:train", timeout=30, blocking_timeout=15)
        try:
            held = lock.acquire()
        except REDIS_ERRORS:  # Redis down: Dagster's own run list still guards
            held = None
        if held is False:
            raise HTTPException(status_code=409, detail="a retraining launch is in progress")
        try:
            run_id = launch_retrain(self.serving)
        except RetrainRunningError as exc:
            return JSONResponse({"detail": str(exc), "run_id": exc.run_id},  # type: ignore[return-value]
                                status_code=409)
        except DagsterUnavailableError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        finally:
            if held:
                lock.release()
        return TrainResponse(run_id=run_id, job=self.serving.retrain_job)

    @app.get("/api/v1/recs/{user_id}", response_model=RecommendResponse)
    def recs(
        self,
        user_id: Identifier,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        type: RecsType = "personalized",  # noqa: A002 - the public parameter name
        experiment_id: Annotated[str | None, Query(max_length=128)] = None,
        category: Annotated[list[CategoryName] | None,
                            Query(max_length=MAX_CATEGORY_FILTERS)] = None,
        max_price: Annotated[float | None, Query(ge=0)] = None,
        explain: bool = False,
        device: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        filters = RecommendFilters(categories=category or None, max_price=max_price)
        query = self.query(user_id, limit, type, filters, experiment_id=experiment_id,
                           explain=explain, context={"device": device} if device else None)
        return Response(self.answer(query), media_type="application/json")

    @app.post("/events", response_model=EventsResponse, status_code=202)
    def events(self, body: Annotated[EventsBody, Body()]) -> EventsResponse:
        """Log events durably (or append them to the shared stream), push them online, and
        invalidate the users' cached lists."""
        batch = body.events if isinstance(body, EventBatch) else [body]
        return EventsResponse(accepted=len(batch), pushed_users=self.intake.accept(batch))

    @app.get("/health")
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready")
    def ready(self) -> JSONResponse:
        checks = {"model": self.models.engine is not None, "redis": self.cache.ping()}
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)


RecommendationService.add_asgi_middleware(BadInputAs422)
RecommendationService.add_asgi_middleware(AccessMiddleware, fold=True)
RecommendationService.add_asgi_middleware(FastRecs)  # checks the limits AccessMiddleware folds
label_endpoints_by_route(app)
mount_pages(app, RecommendationService)
secure_openapi(app)

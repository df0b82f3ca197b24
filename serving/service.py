"""The BentoML service: ``bentoml serve serving.service:RecommendationService``.

``POST /recommend`` is a BentoML API; the REST paths (``GET /api/v1/recs/{user_id}``,
``POST /events``, ``/health``) come from a FastAPI app mounted in the service, sharing the
loaded model. The model is the champion that the Dagster ``bento_model`` asset imported into
BentoML's model store.
"""

import logging
import os

from training.settings import get_settings, use_bentoml_home

use_bentoml_home(get_settings())  # BentoML reads its home once, at import

import bentoml  # noqa: E402
from fastapi import FastAPI, Query  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

from serving.engine import Engine  # noqa: E402
from serving.schemas import (  # noqa: E402
    EventsRequest,
    EventsResponse,
    RecommendResponse,
)
from training.event_log import EventLog  # noqa: E402
from training.feature_store import get_feature_store  # noqa: E402
from training.redis_server import ping, resolve_redis  # noqa: E402
from training.registry import RecommenderPyfunc  # noqa: E402

logger = logging.getLogger(__name__)

app = FastAPI(title="Recommendation API", version="1")


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


def load_engine() -> Engine:
    """The champion from BentoML's model store, with the platform's Feast store and log."""
    settings = get_settings()
    model = bentoml.models.get(f"{settings.model_name}:latest")
    pyfunc = bentoml.mlflow.load_model(model)
    wrapper = pyfunc.unwrap_python_model()
    if not isinstance(wrapper, RecommenderPyfunc):
        raise TypeError(f"{model.tag} is not a recommender model")
    version = model.info.labels.get("mlflow_version", str(model.tag.version))
    logger.info("serving %s (MLflow version %s)", model.tag, version)
    return Engine(
        recommender=wrapper.recommender,
        store=get_feature_store(settings),
        model_version=version,
        event_log=EventLog(settings.event_log_dir),
    )


@bentoml.service(name="recommendations", traffic={"timeout": 30},
                 workers=int(os.environ.get("RECSYS_SERVICE_WORKERS", "1")))
@bentoml.asgi_app(app, path="/")
class RecommendationService:
    """Personalized recommendations from the MLflow champion and Feast's online store."""

    def __init__(self) -> None:
        self.engine = load_engine()
        self.redis_url = resolve_redis(get_settings()).url

    @bentoml.api(route="/recommend")
    def recommend(self, user_id: str, num_items: int = 10) -> RecommendResponse:
        """Top ``num_items`` for ``user_id`` (popular items, flagged, for unknown users)."""
        if not user_id or not 1 <= num_items <= 100:
            raise bentoml.exceptions.InvalidArgument(
                "user_id must be non-empty and num_items within 1..100"
            )
        return self.engine.recommend(user_id, num_items)

    @app.get("/api/v1/recs/{user_id}", response_model=RecommendResponse)
    def recs(self, user_id: str, limit: int = Query(10, ge=1, le=100)) -> RecommendResponse:
        return self.engine.recommend(user_id, limit)

    @app.post("/events", response_model=EventsResponse, status_code=202)
    def events(self, body: EventsRequest) -> EventsResponse:
        pushed = self.engine.record(body.events)
        return EventsResponse(accepted=len(body.events), pushed_users=pushed)

    @app.get("/health")
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready")
    def ready(self) -> JSONResponse:
        checks = {"model": self.engine is not None, "redis": ping(self.redis_url)}
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)


RecommendationService.add_asgi_middleware(BadInputAs422)


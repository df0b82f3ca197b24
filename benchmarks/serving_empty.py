"""The baseline of ``benchmarks/serving.py``: an empty BentoML service with the same shape.

The same mounted FastAPI route as the recommendation service (``GET /api/v1/recs/{user_id}``)
answering a constant body, with the same worker count and the same garbage-collection
settings (:mod:`serving.gc_pauses`), so the difference measures the request path and not
the framework. ``bentoml serve benchmarks.serving_empty:EmptyService``.
"""

import os

import bentoml
from fastapi import FastAPI
from fastapi.responses import Response

from serving.endpoint_labels import label_endpoints_by_route
from serving.gc_pauses import freeze_heap, install_timeout_fix

app = FastAPI()
install_timeout_fix()
_BODY = b'{"items":[]}'


@bentoml.service(name="empty", workers=int(os.environ.get("RECSYS_SERVING_WORKERS", "1")))
@bentoml.asgi_app(app, path="/")
class EmptyService:
    """Answers every request at once."""

    def __init__(self) -> None:
        freeze_heap()  # as the recommendation service does once its model is loaded

    @app.get("/api/v1/recs/{user_id}")
    def recs(self, user_id: str, limit: int = 10) -> Response:
        return Response(_BODY, media_type="application/json")

    @app.get("/health/ready")
    def ready(self) -> dict[str, bool]:
        return {"ready": True}


label_endpoints_by_route(app)  # as the recommendation service labels its metrics

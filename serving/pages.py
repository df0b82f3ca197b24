"""The service's own pages: a landing page at ``/``, the demo at ``/demo``, and an API
reference at ``/docs`` that works without a network.

FastAPI's default ``/docs`` and ``/redoc`` load their scripts from a CDN, so they are blank
wherever the service has no internet. Here ``/docs`` is Swagger UI from the bundle the
``fastapi-offline`` wheel ships, served by the service itself under ``/static/swagger-ui``
(FastAPI's "self-hosting the docs assets" recipe), and the CDN-based ``/redoc`` is gone.
``/openapi.json`` becomes one document for every route: FastAPI's REST paths, and the
BentoML APIs (``POST /recommend``) and BentoML's infrastructure endpoints (``/livez``,
``/readyz``, ``/metrics``) as BentoML describes them, with this service's description, tags
and examples. The demo page calls the API exactly as any client does.

BentoML serves ``/`` (a Swagger page of its ``/docs.json``, under BentoML's default text),
``/docs.json`` and ``/static_content``. The FastAPI app is mounted at ``/`` ahead of BentoML's
index route, so the landing page here answers ``/``; ``/docs.json`` and ``/static_content``
stay BentoML's.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import bentoml
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

STATIC_DIR = Path(__file__).parent / "static"
#: Where the pages' own files and the bundled Swagger UI are served.
STATIC_URL, DOCS_ASSETS_URL = "/static", "/static/swagger-ui"

DESCRIPTION = """\
Personalized recommendations from the MLflow `champion` model, ranked on features read from
Feast's online store (Redis), with a reason per item.

* **Ask**: `GET /api/v1/recs/{user_id}` or `POST /recommend` (the same query as a JSON body,
  plus diversity and a per-category cap). A user the model has never seen, missing features
  or an unreachable Redis give the most popular in-stock items with `"fallback": true`, never
  an error.
* **Tell**: `POST /events` logs events durably, pushes them to the online store and
  invalidates the user's cached list, so the next answer already excludes the item.
* **Operate**: the model registry (`/api/v1/recs/models`), retraining through Dagster
  (`POST /api/v1/recs/train`), health and Prometheus metrics.

Try it in the browser at [/demo](/demo). A malformed body gets HTTP 422 naming the field.
"""

TAGS = [
    {"name": "recommendations",
     "description": "Ranked lists for a user, with the model version, experiment arm and "
                    "fallback flag of each answer."},
    {"name": "events", "description": "What users did, logged and pushed online at once."},
    {"name": "models", "description": "The MLflow registry's versions and aliases; retraining."},
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics."},
]

_RESPONSE_EXAMPLE = {
    "user_id": "u599",
    "items": [
        {"item_id": "i218", "score": 1.734, "title": "Item 218 (drama)",
         "categories": ["drama", "romance"], "price": 12.99,
         "reason": "because you interacted with Item 17 (drama)", "reason_kind": "seed_item",
         "reason_item_id": "i17"},
        {"item_id": "i40", "score": 1.512, "title": "Item 40 (comedy)",
         "categories": ["comedy"], "price": 8.5, "reason": "matches your interest in comedy",
         "reason_kind": "category"},
    ],
    "model_version": "3", "fallback": False, "fallback_reason": None, "cached": False,
    "experiment_id": None, "variant": None, "latency_ms": 1.21,
}
_CLICK = {"event_id": "e-7f3a", "user_id": "u599", "item_id": "i218", "event_type": "click",
          "timestamp": "2026-11-23T10:00:00Z", "context": {"device": "mobile"}}
_RATING = {"event_id": "e-7f3b", "user_id": "u599", "item_id": "i40", "event_type": "rate",
           "value": 4.5, "timestamp": "2026-11-23T10:02:00Z"}
_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("/recommend", "post"): {
        "minimal": {"summary": "Top 5 for a user", "value": {"user_id": "u599", "num_items": 5}},
        "diverse and filtered": {
            "summary": "Diversified, one category, a price cap",
            "value": {"user_id": "u599", "num_items": 5, "diversity": 0.3,
                      "filters": {"categories": ["drama"], "max_price": 30}},
        },
    },
    ("/events", "post"): {
        "one event": {"summary": "One click", "value": _CLICK},
        "batch": {"summary": "Up to 1,000 events", "value": {"events": [_CLICK, _RATING]}},
    },
}


#: Summaries of the operations BentoML describes without one.
_SUMMARIES = {
    "/recommend": "Recommend (the query as a JSON body)",
    "/livez": "Liveness (BentoML)",
    "/healthz": "Liveness (BentoML)",
    "/readyz": "Readiness (BentoML)",
    "/metrics": "Prometheus metrics",
}


def tag_of(path: str) -> str:
    """The reference's section for ``path``."""
    if path in ("/recommend", "/api/v1/recs/{user_id}"):
        return "recommendations"
    if path == "/events":
        return "events"
    if path.startswith(("/api/v1/recs/models", "/api/v1/recs/train")):
        return "models"
    return "operations"


def _pydantic_schema(model: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """``model``'s JSON schema, its definitions moved to the document's components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    return schema


def _references(node: Any) -> set[str]:
    """Names of the component schemas ``node`` refers to (directly)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        found = {ref.rsplit("/", 1)[-1]} if ref.startswith("#/components/schemas/") else set()
        return found.union(*(_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node))
    return set()


def _drop_unreferenced(document: dict[str, Any]) -> None:
    """Keep the component schemas the paths use, directly or through other schemas
    (BentoML's spec brings descriptors that the operations here no longer refer to)."""
    schemas = document["components"]["schemas"]
    used, todo = set(), _references(document["paths"])
    while todo:
        name = todo.pop()
        if name not in used and name in schemas:
            used.add(name)
            todo |= _references(schemas[name])
    for name in set(schemas) - used:
        del schemas[name]


#: BentoML's answer to an invalid API body: a message and pydantic's list of errors.
_BENTOML_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"},
                   "detail": {"type": "array", "items": {"type": "object"}}},
    "required": ["error"],
}


def openapi_document(app: FastAPI, service: bentoml.Service[Any]) -> dict[str, Any]:
    """One OpenAPI document for every route the service answers.

    The REST paths as FastAPI describes them, then each path BentoML describes that FastAPI
    does not: the BentoML APIs and its infrastructure endpoints. A BentoML API's body and
    answer are the JSON schemas of its pydantic input and output models, since BentoML's
    own rendering of them drops which fields may be null. Raises ``KeyError`` when a path
    given an example here is missing, so a renamed route fails loudly.
    """
    document = get_openapi(title="Recommendation API", version=app.version,
                           description=DESCRIPTION, routes=app.routes, tags=TAGS)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # through JSON, as served: BentoML's status codes are int keys, FastAPI's strings
    bento = json.loads(json.dumps(service.openapi_spec.asdict()))
    for path, item in bento["paths"].items():
        document["paths"].setdefault(path, item)
    for name, schema in bento.get("components", {}).get("schemas", {}).items():
        schemas.setdefault(name, schema)
    for method in service.apis.values():
        operation = document["paths"][method.route]["post"]
        body = operation["requestBody"]["content"]["application/json"]
        body["schema"] = _pydantic_schema(method.input_spec, schemas)
        ok = operation["responses"]["200"]["content"]["application/json"]
        ok["schema"] = _pydantic_schema(method.output_spec, schemas)
        # The service answers an invalid body with 422 (BadInputAs422), not BentoML's 400,
        # and BentoML's body says what failed as pydantic's list of errors.
        if "400" in operation["responses"]:
            operation["responses"].pop("400")
            operation["responses"]["422"] = {
                "description": "The body is not valid JSON or breaks the schema.",
                "content": {"application/json": {"schema": _BENTOML_ERROR}}}
    for path, item in document["paths"].items():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["tags"] = [tag_of(path)]
                if path in _SUMMARIES:
                    operation.setdefault("summary", _SUMMARIES[path])
    for (path, method), examples in _EXAMPLES.items():
        body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        body["examples"] = copy.deepcopy(examples)
    for path, method in (("/recommend", "post"), ("/api/v1/recs/{user_id}", "get")):
        ok = document["paths"][path][method]["responses"]["200"]
        ok["content"]["application/json"]["example"] = copy.deepcopy(_RESPONSE_EXAMPLE)
    _drop_unreferenced(document)
    return document


def mount_pages(app: FastAPI, service: bentoml.Service[Any]) -> None:
    """Serve the landing page, the demo, and the offline API reference on ``app``.

    Replaces FastAPI's CDN-based ``/docs`` (and drops ``/redoc``) and its ``/openapi.json``
    schema (with :func:`openapi_document`); call it once the service's routes are declared.
    """
    cdn_pages = {app.docs_url, app.redoc_url}
    app.router.routes[:] = [route for route in app.router.routes
                            if not (isinstance(route, Route) and route.path in cdn_pages)]
    app.docs_url, app.redoc_url, app.openapi_schema = "/docs", None, None
    # The more specific mount first: the router takes the first mount that matches.
    app.mount(DOCS_ASSETS_URL, StaticFiles(packages=[("fastapi_offline", "static")]),
              name="swagger-ui")
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app, service)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/demo", include_in_schema=False)
    def demo() -> FileResponse:
        return FileResponse(STATIC_DIR / "demo.html")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title="Recommendation API",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            # no validator badge: it would send the document to an outside validator
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None,
                                   "displayRequestDuration": True},
        )

"""BentoML's traffic metrics see route templates; the app behind them the real path."""

import asyncio

from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware
from fastapi import FastAPI

from serving import endpoint_labels
from serving.endpoint_labels import label_endpoints_by_route, route_template

app = FastAPI()


@app.get("/things/list")
def things() -> list[str]:
    return []


@app.get("/things/{thing_id}")
def thing(thing_id: str) -> str:
    return thing_id


def test_paths_map_to_the_first_matching_route() -> None:
    label_endpoints_by_route(app)
    assert route_template("/things/t-42") == "/things/{thing_id}"
    assert route_template("/things/list") == "/things/list"  # declared first, stays itself
    assert route_template("/things/a/b") == "/things/a/b"  # no route: untouched
    assert route_template("/elsewhere") == "/elsewhere"


def test_middleware_labels_the_template_and_the_app_gets_the_real_path(monkeypatch) -> None:  # noqa: ANN001
    label_endpoints_by_route(app)
    seen: dict[str, str] = {}

    async def original(self, scope, receive, send) -> None:  # noqa: ANN001
        seen["label"] = scope["path"]  # what BentoML's middleware labels the series with
        await self.app(scope, receive, send)

    async def inner(scope, receive, send) -> None:  # noqa: ANN001
        seen["app"] = scope["path"]
        seen["leak"] = str([k for k in scope if k.startswith("recsys.")])

    monkeypatch.setattr(endpoint_labels, "_original_call", original)
    middleware = RunnerTrafficMetricsMiddleware(inner)
    asyncio.run(middleware({"type": "http", "path": "/things/t-7"}, None, None))
    assert seen == {"label": "/things/{thing_id}", "app": "/things/t-7", "leak": "[]"}

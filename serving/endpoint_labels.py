"""Prometheus ``endpoint`` labels by route template instead of by raw request path.

BentoML 1.4's ``RunnerTrafficMetricsMiddleware`` (``bentoml._internal.server.http.instruments``,
unchanged in 1.4.40) labels its request counter, duration histogram and in-progress gauge
with ``scope["path"]``. Under ``/api/v1/recs/{user_id}`` that is one label set per user:
``/metrics`` grows with the user base (three series, one a 17-bucket histogram, per user ever
seen), and the first request of each user pays for creating them in the multi-process
metric files (measured with py-spy: a tenth of the worker's time on an uncached request).

:func:`label_endpoints_by_route` registers the paths of an app; the middleware
then sees the template (``/api/v1/recs/{user_id}``) as the path and the app behind it the
real path again. Other paths pass untouched.
"""

from __future__ import annotations

import re
from typing import Any

from bentoml._internal.server.http import instruments
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import compile_path

_TEMPLATES: dict[str, re.Pattern[str]] = {}  # route template -> its path regex, in order
_REAL_PATH = "recsys.real_path"
_original_call = instruments.RunnerTrafficMetricsMiddleware.__call__


def route_template(path: str) -> str:
    """The registered route template ``path`` matches, else ``path`` itself."""
    for template, regex in _TEMPLATES.items():
        if regex.match(path):
            return template
    return path


class _RealPath:
    """Gives the app behind the metrics middleware the request's real path back."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if _REAL_PATH in scope:
            scope = {**scope, "path": scope[_REAL_PATH]}
            del scope[_REAL_PATH]
        await self.app(scope, receive, send)


async def _call(self: Any, scope: Any, receive: Any, send: Any) -> None:
    """``RunnerTrafficMetricsMiddleware.__call__`` seeing route templates as paths."""
    if not isinstance(self.app, _RealPath):
        self.app = _RealPath(self.app)
    path = scope.get("path")
    if path is not None and (template := route_template(path)) != path:
        scope = {**scope, "path": template, _REAL_PATH: path}
    await _original_call(self, scope, receive, send)


def label_endpoints_by_route(app: FastAPI) -> None:
    """Label BentoML's traffic metrics of ``app``'s paths with their templates (idempotent).

    The templates are the paths of the app's OpenAPI schema (BentoML moves class-view
    routes into an included router, so ``app.routes`` does not list them), in declaration
    order. The first template matching a path names it, as the router tries routes in
    order: ``/api/v1/recs/models`` declared before ``/api/v1/recs/{user_id}`` stays itself.
    """
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for template in schema.get("paths", {}):
        _TEMPLATES.setdefault(template, compile_path(template)[0])
    instruments.RunnerTrafficMetricsMiddleware.__call__ = _call  # type: ignore[method-assign]

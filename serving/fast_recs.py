"""The plain request for a user's list, answered without FastAPI's routing and validation.

``GET /api/v1/recs/{user_id}`` with no query or only ``limit`` is nearly all the traffic.
:class:`FastRecs`, an ASGI middleware behind :class:`serving.access.AccessMiddleware`, answers
it itself: the user id and the limit checked as the route's validation would accept them,
then :meth:`serving.service.RecommendationService.look_up` (the request's rate limits, which
the access middleware leaves to it, the cached body and the user's features in one round
trip to Redis) and :meth:`~serving.service.RecommendationService.answer` on the event loop:
a cache hit, and a miss whose features came with the lookup, since ranking is then pure CPU
(numpy and the compiled ranker; the cache put and the impression are queued for background
threads), so a hop to the thread pool and back would only add its hand-overs under the GIL.
A miss without its features (the engine reads them from Redis itself) goes to the thread
pool as the route's would. Any other request
(other parameters, an id that needs normalizing, another route) goes on to the FastAPI route
unchanged, its limits checked first. Measured in process (``benchmarks/serving_cpu.py``) a
cache hit costs a fraction of the CPU the route takes to validate its eight parameters,
resolve its dependencies and hop to a thread and back (README, Benchmarks).
"""

from __future__ import annotations

from typing import Any

import bentoml
from anyio import to_thread

from recsys.events.schema import MAX_ID_LENGTH
from serving.access import PENDING_LIMITS, limit_headers, refuse_over_limit
from serving.endpoint_labels import route_template

PREFIX = "/api/v1/recs/"
TEMPLATE = PREFIX + "{user_id}"
DEFAULT_LIMIT = 10  # the route's default ``limit``
MAX_LIMIT = 100


def plain_request(scope: Any) -> tuple[str, int] | None:
    """``(user_id, limit)`` of a ``GET /api/v1/recs/{user_id}[?limit=N]`` the route would
    accept as it is (an ASCII id without surrounding blanks, a limit of 1-100 in digits);
    None for any other request."""
    path = scope["path"]
    if scope["method"] != "GET" or not path.startswith(PREFIX):
        return None
    user_id = path[len(PREFIX):]
    if not (0 < len(user_id) <= MAX_ID_LENGTH and user_id.isascii() and user_id.isprintable()
            and "/" not in user_id and user_id.strip() == user_id):
        return None
    query = scope.get("query_string", b"")
    limit = DEFAULT_LIMIT
    if query:
        name, _, value = query.partition(b"=")
        if name != b"limit" or not (value.isdigit() and len(value) <= 3):
            return None
        limit = int(value)
        if not 1 <= limit <= MAX_LIMIT:
            return None
    if route_template(path) != TEMPLATE:  # another route's path (``/api/v1/recs/models``)
        return None
    return user_id, limit


class FastRecs:
    """ASGI middleware: answers the plain request for a user's list (:func:`plain_request`)
    from the service; every other request goes on to ``app``."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = scope.get("state")
        limits = state.pop(PENDING_LIMITS, None) if state else None
        plain = plain_request(scope)
        if plain is None:
            if limits is not None:  # the route's own request: its limits on their own
                verdict = limits.limiter.admit(*limits.limits)
                if not verdict.allowed:
                    return await refuse_over_limit(send, verdict)
                send = limit_headers(send, verdict)
            return await self.app(scope, receive, send)
        service = bentoml.get_current_service()
        query = service.query(*plain)
        prepared = service.look_up(query, limits)
        verdict = prepared.found.verdict
        if verdict is not None and not verdict.allowed:
            return await refuse_over_limit(send, verdict)
        try:
            if prepared.found.body is not None or prepared.found.features is not None:
                # a cache hit, or a miss with the user's features read: no I/O left
                body = service.answer(query, prepared)
            else:  # the engine reads the features itself (Redis not shared, or failed)
                body = await to_thread.run_sync(service.answer, query, prepared)
        except Exception:  # as the route's ServerErrorMiddleware: a 500, then the error
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"Internal Server Error"})
            raise
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", b"%d" % len(body))]
        if verdict is not None:
            headers += verdict.headers()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

"""Keeping garbage-collection pauses out of the request path of a BentoML worker.

Two causes, found with ``benchmarks/serving.py``. First, BentoML 1.4's
``TimeoutMiddleware`` (``bentoml._internal.server.http.traffic``, unchanged in 1.4.40) arms
``loop.call_later(timeout, ...)`` for each request and never cancels it, so every finished
request stays referenced (its future, context and tracing span, about 20 objects) until
its timer fires. At 2,000 requests per second and a 30 s timeout that is over a million
live objects, and each full collection walks them all: the worker froze for 100-500 ms
every few seconds, and the p99 latency of even an empty endpoint went from 3 ms to
250-400 ms. :func:`install_timeout_fix` gives the middleware the same ``__call__`` plus
``timer.cancel()`` once the request is done; the service and the benchmark's empty
baseline both install it, so they are measured on the same framework. Second, what a
worker loads at start (libraries, the model) lives as long as the worker yet is walked
again by every full collection: :func:`freeze_heap` takes it out of the scans.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

from bentoml._internal.server.http import traffic
from starlette.responses import JSONResponse

logger = logging.getLogger(__name__)


async def _call(self: traffic.TimeoutMiddleware, scope: Any, receive: Any, send: Any) -> None:
    """``TimeoutMiddleware.__call__`` of BentoML 1.4, cancelling its timer when done."""
    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message: Any) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    task = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if task.cancel():
            body = {"error": f"Not able to process the request in {self.timeout} seconds"}
            await JSONResponse(body, status_code=504)(scope, receive, send)
    else:
        await task
    finally:
        timer.cancel()


def install_timeout_fix() -> None:
    """Patch BentoML's timeout middleware in this process (idempotent)."""
    traffic.TimeoutMiddleware.__call__ = _call  # type: ignore[method-assign]


def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's scans (``gc.freeze``).

    Called once a worker has loaded its model: the hundreds of thousands of objects alive
    then would otherwise be walked by every full collection without ever being freed.
    """
    gc.collect()
    gc.freeze()
    logger.info("froze %d objects out of the garbage collector's scans", gc.get_freeze_count())

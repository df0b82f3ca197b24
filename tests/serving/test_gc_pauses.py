"""BentoML's timeout middleware, as patched: timers end with their request, timeouts still 504."""

import asyncio

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from serving.gc_pauses import install_timeout_fix


def _app(delay: float):  # noqa: ANN202
    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    return app


async def _call(middleware: TimeoutMiddleware) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await middleware({"type": "http", "path": "/"}, receive, send)
    return sent


def test_finished_requests_leave_no_live_timer() -> None:
    install_timeout_fix()

    async def run() -> int:
        middleware = TimeoutMiddleware(_app(0), timeout=30)
        for _ in range(50):
            assert (await _call(middleware))[0]["status"] == 200
        loop = asyncio.get_running_loop()
        return sum(not handle.cancelled() for handle in loop._scheduled)  # type: ignore[attr-defined]

    assert asyncio.run(run()) == 0


def test_slow_request_still_times_out_with_504() -> None:
    install_timeout_fix()
    sent = asyncio.run(_call(TimeoutMiddleware(_app(1.0), timeout=0.05)))
    assert sent[0]["status"] == 504

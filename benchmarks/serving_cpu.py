"""CPU per request of a BentoML service in process, through its whole ASGI app.

The service's ASGI app (``Service.to_asgi()``: BentoML's middlewares, the service's own, the
mounted FastAPI route) is driven directly on an event loop, without a server or a client, so
the process CPU time per request (every thread: the route's worker thread, the cache writer,
the impression flush) is the request path's own. Run against the empty service and the
recommendation service, in turns, the difference is what the service adds to a request.

``python -m benchmarks.serving_cpu [--requests 3000] [--repeats 3] [--concurrency 4]
[--unknown] [--profile out.prof]`` (``--unknown``: users without events, answered the popularity
fallback); needs a trained champion in ``.data`` (``make bench-serving`` or
``python -m orchestration.run`` trains one). Prints one JSON object: CPU microseconds per
request of each target (median over the repeats, and each repeat) and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import json
import os
import statistics
import sys
import time
from typing import Any

from benchmarks.serving_probe import api_headers, clear_response_cache, log


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


class Driver:
    """An ASGI app with its lifespan started, answering GET requests on the current loop."""

    def __init__(self, app: Any, headers: dict[str, str]):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self._lifespan: asyncio.Queue = asyncio.Queue()
        self._started = asyncio.Event()

    async def start(self) -> None:
        async def receive() -> dict:
            return await self._lifespan.get()

        async def send(message: dict) -> None:
            if message["type"].startswith("lifespan.startup"):
                if message["type"].endswith("failed"):
                    raise RuntimeError(message.get("message"))
                self._started.set()

        self._task = asyncio.ensure_future(self.app({"type": "lifespan", "asgi": {
            "version": "3.0"}, "state": {}}, receive, send))
        await self._lifespan.put({"type": "lifespan.startup"})
        await self._started.wait()

    async def stop(self) -> None:
        await self._lifespan.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(self._task, 30)

    async def get(self, path: str) -> tuple[int, bytes]:
        raw_path, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": raw_path,
                 "raw_path": raw_path.encode(), "query_string": query.encode(),
                 "root_path": "", "headers": [(b"host", b"bench"), *self.headers],
                 "client": ("127.0.0.1", 1234), "server": ("127.0.0.1", 80), "state": {}}
        status, body = 0, []
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(body)


async def drive(driver: Driver, paths: list[str], requests: int, concurrency: int,
                offset: int) -> float:
    """CPU seconds of the process per request over ``requests`` requests."""
    queue = iter(range(requests))

    async def client() -> None:
        for i in queue:
            status, body = await driver.get(paths[(offset + i) % len(paths)])
            if status != 200:
                raise RuntimeError(f"status {status}: {body[:200]!r}")

    start = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return (time.process_time() - start) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="serving.service:RecommendationService")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--users", type=int, default=0, help="distinct users (0: all)")
    parser.add_argument("--unknown", action="store_true",
                        help="users without events (the popularity fallback; half of the "
                        "scale world's requests) instead of the world's users")
    parser.add_argument("--profile", help="write a cProfile of the last repeat here")
    args = parser.parse_args(argv)
    from benchmarks.serving import users

    user_ids = ([f"nobody{n}" for n in range(args.users or 2000)] if args.unknown
                else users()[: args.users or None])
    paths = [f"/api/v1/recs/{u}?limit=10" for u in user_ids]
    clear_response_cache()
    headers = api_headers()

    async def run() -> list[float]:
        driver = Driver(_load(args.target).to_asgi(), headers)
        await driver.start()
        await drive(driver, paths, min(len(paths), args.requests), args.concurrency, 0)  # warm
        await asyncio.sleep(0.5)
        out = []
        for repeat in range(args.repeats):
            profile = cProfile.Profile() if args.profile and repeat == args.repeats - 1 else None
            if profile:
                profile.enable()
            out.append(await drive(driver, paths, args.requests, args.concurrency,
                                   repeat * 7919))
            if profile:
                profile.disable()
                profile.dump_stats(args.profile)
        await driver.stop()
        return out

    per_request = asyncio.run(run())
    log(f"{args.target}: {[round(x * 1e6, 1) for x in per_request]} us/request")
    print(json.dumps({"target": args.target, "users": "unknown" if args.unknown else "world",
                      "cpu_us": round(statistics.median(per_request) * 1e6, 1),
                      "repeats": [round(x * 1e6, 1) for x in per_request],
                      "requests": args.requests, "concurrency": args.concurrency,
                      "load_average": [round(x, 2) for x in os.getloadavg()]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Capacity model of the recommendation service: measured figures turned into a fleet size.

Protocol (one run, on the trained champion in ``.data``; the pipeline runs first when there is
none): the service (``--workers`` workers) is started twice with ``benchmarks/serving.py``'s
machinery, with its response cache and with the cache off. For each:

1. saturation: wrk keeps ``--connections`` connections busy for ``--duration`` seconds over every
   user in turn (the cached service first answers each user once, so its cache holds them all);
2. cost per request: the CPU seconds that the service's processes (``psutil``, the server and
   its workers) and the Redis server (``INFO cpu``) used during the saturation run, divided by
   the requests answered: core-seconds per request whatever share of the cores a shared
   machine left the service; and Redis commands per request from ``INFO commandstats``
   (commands that a Lua script runs count too, as Redis counts them; the script call itself is
   ``evalsha``);
3. tail latency under a paced load of 50 %, 70 % and 90 % of that saturation (wrk with a random
   delay per connection: an offered rate, not as fast as the server answers; wrk2 is not
   packaged by Debian), ``--level-seconds`` each.

Then Redis memory: ``MEMORY USAGE`` of Feast's user and item rows (``serving_probe.redis_bytes``)
and of the cached responses, over the world in ``.data``. From these the model
(``benchmarks/capacity_model.py``): core-seconds per request for a cache hit ratio h as the mix
of the cached and uncached costs, the highest measured load level whose p99 stays under the
objective, cores and 2-core replicas for the target rate, and the Redis memory and primaries
for N users and M items.

The load generator runs on the same machine as the service (it takes CPU from it) and the
machine may be shared: the per-core figures are a floor, compare figures of one run only.

Prints progress on stderr, the README's table (markdown) on stderr, and one JSON object last
on stdout. Needs ``wrk``. Usage: ``python -m benchmarks.capacity [--duration 15]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil
import redis

from benchmarks.capacity_model import model, table
from benchmarks.serving import ensure_champion, entities
from benchmarks.serving_probe import (
    api_headers,
    clear_response_cache,
    log,
    redis_bytes,
    redis_client,
    scrape,
    serve,
)
from benchmarks.serving_wrk import run_wrk
from serving.cache import PREFIX

LEVELS = (0.5, 0.7, 0.9)
#: Commands of the benchmark itself, not of the requests.
OWN_COMMANDS = {"info", "memory|usage", "scan", "ping", "dbsize", "config|get"}


def command_calls(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"]
            for name, stats in client.info("commandstats").items()}


def commands_per_request(before: dict[str, int], after: dict[str, int],
                         requests: int) -> dict[str, float]:
    """Commands per answered request, by command, and their ``total``."""
    per = {name: (calls - before.get(name, 0)) / max(requests, 1)
           for name, calls in after.items() if name not in OWN_COMMANDS}
    per = {name: round(value, 3) for name, value in sorted(per.items()) if value >= 0.001}
    return {**per, "total": round(sum(per.values()), 3)}


def cached_response_bytes(client: redis.Redis, sample: int = 500) -> dict[str, float]:
    """Cached responses in Redis and their mean bytes (``MEMORY USAGE``, exact, over a sample)."""
    keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
    sizes = [client.memory_usage(key, samples=0) or 0 for key in keys[:sample]]
    return {"keys": len(keys), "bytes_per_key": round(sum(sizes) / max(len(sizes), 1), 1)}


def server_cpu_seconds(url: str) -> float:
    """CPU seconds (user + system) that the ``bentoml serve`` on ``url``'s port and its
    workers have used: what a request costs, whatever share of the cores the machine gave."""
    port = url.rsplit(":", 1)[1]
    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "serve" in cmdline and port in cmdline:
            for member in [proc, *proc.children(recursive=True)]:
                try:
                    times = member.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    continue
    return total


def redis_cpu_seconds(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def measure(url: str, paths: Path, headers: dict[str, str],
            args: argparse.Namespace) -> dict:
    """Saturation, Redis commands per request and p99 at each load level of one service."""
    client = redis_client()
    run_wrk(url, paths, 1, 1, 2, headers)  # warm-up
    before_metrics, before_calls = scrape(url), command_calls(client)
    before_cpu, before_redis_cpu = server_cpu_seconds(url), redis_cpu_seconds(client)
    saturation = run_wrk(url, paths, args.connections, args.threads, args.duration, headers)
    cpu = server_cpu_seconds(url) - before_cpu
    redis_cpu = redis_cpu_seconds(client) - before_redis_cpu
    after_metrics, after_calls = scrape(url), command_calls(client)
    hits = after_metrics.get("cache:hit", 0) - before_metrics.get("cache:hit", 0)
    misses = after_metrics.get("cache:miss", 0) - before_metrics.get("cache:miss", 0)
    out = {
        "saturation_rps": round(saturation["rps"], 1),
        "saturation_p99_ms": round(saturation["p99_ms"], 2),
        "cache_hit_ratio": round(hits / max(hits + misses, 1), 4),
        # CPU the service's processes and the Redis server spent per answered request
        "cpu_ms_per_request": round(cpu / max(saturation["requests"], 1) * 1000, 4),
        "redis_cpu_ms_per_request": round(redis_cpu / max(saturation["requests"], 1) * 1000, 4),
        "redis_commands_per_request": commands_per_request(
            before_calls, after_calls, saturation["requests"]),
        "errors": saturation["errors"],
        "levels": {},
    }
    for level in LEVELS:
        rate = level * saturation["rps"]
        paced = run_wrk(url, paths, args.paced_connections, args.threads, args.level_seconds,
                        headers, rate=rate)
        log(f"  {level:.0%} of saturation: offered {rate:.0f}/s, answered {paced['rps']:.0f}/s, "
            f"p99 {paced['p99_ms']:.1f} ms")
        out["levels"][f"{level:.0%}"] = {
            "offered_rps": round(rate, 1), "rps": round(paced["rps"], 1),
            "p50_ms": round(paced["p50_ms"], 2), "p99_ms": round(paced["p99_ms"], 2),
            "errors": paced["errors"],
        }
        out["errors"] += paced["errors"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=float, default=None,
                        help="cores the service had (default: the machine's, at most workers)")
    parser.add_argument("--connections", type=int, default=16, help="saturation runs")
    parser.add_argument("--paced-connections", type=int, default=32, help="paced runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=15, help="seconds of each saturation")
    parser.add_argument("--level-seconds", type=int, default=10, help="seconds of each level")
    parser.add_argument("--target-rps", type=float, default=10_000)
    parser.add_argument("--p99-ms", type=float, default=100, help="latency objective")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk is missing: install it (Debian/Ubuntu: `sudo apt-get install wrk`) and rerun")
        return 2
    cores = args.cores or min(os.cpu_count() or 1, args.workers)
    ensure_champion()
    clear_response_cache()
    user_ids, item_ids = entities()
    headers = api_headers()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = Path(tmp) / "paths.txt"
        paths.write_text("".join(f"/api/v1/recs/{u}?limit=10\n" for u in user_ids))
        prom = Path(tmp) / "prometheus"
        prom.mkdir()
        env = {"PROMETHEUS_MULTIPROC_DIR": str(prom)}
        log(f"service with its response cache, {args.workers} worker(s)")
        with serve("serving.service:RecommendationService", args.workers, env) as (url, _):
            run_wrk(url, paths, 4, 2, max(10, math.ceil(len(user_ids) / 100)), headers)
            time.sleep(0.5)  # the write-behind queue drains: every user is cached
            runs["cached"] = measure(url, paths, headers, args)
            rows = redis_bytes(user_ids, item_ids)
            memory = {"user_row": {"bytes_per_key": rows["bytes_per_user"]},
                      "item_row": {"bytes_per_key": rows["bytes_per_item"]},
                      "cached_response": cached_response_bytes(redis_client()),
                      "used_memory_mb": rows["used_memory_mb"]}
        log("service without its response cache (every request ranked)")
        no_cache = {**env, "RECSYS_SERVING_CACHE_TTL_SECONDS": "0"}
        with serve("serving.service:RecommendationService", args.workers, no_cache) as (url, _):
            runs["uncached"] = measure(url, paths, headers, args)
    result = {
        "cores": cores, "workers": args.workers, "users": len(user_ids),
        "runs": runs, "redis_memory": memory,
        "model": model(runs, memory, cores, args.target_rps, args.p99_ms),
        "method": {"connections": args.connections, "paced_connections": args.paced_connections,
                   "duration_s": args.duration, "level_s": args.level_seconds,
                   "load_generator": "wrk on the same machine (paced by a per-connection delay)"},
    }
    log(table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

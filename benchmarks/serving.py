"""Load benchmark of the recommendation service against an empty BentoML endpoint.

Protocol: start ``bentoml serve`` on the trained champion (``.data``; when no champion exists
the script first runs ``python -m orchestration.run``) and, in the same run, the empty
service of ``benchmarks/serving_empty.py`` with the same worker count. For each: a 2 s
warm-up on one connection, one wrk connection for ``--unloaded`` seconds (unloaded
latency), then ``--connections`` connections for ``--duration`` seconds (throughput and
tail latency). Every request asks for a different user in turn (all users of the validated
events). The recommendation service's response cache is emptied after its warm-up, so
the unloaded requests are ranked, not cached; under load it answers the users it has
seen, as in production. Then freshness: post a view event of a user's first recommended
item and time until a recommendation no longer contains it (median of ``--trials``).
Last, the service again with its cache off, under the same load: every request ranked.

Prints progress on stderr and one JSON object last on stdout: ``rps``, ``rps_empty``,
``ratio``, ``p99_ms`` (under load), ``p50_ms`` / ``p50_empty_ms`` (one connection,
unloaded), ``freshness_ms``, ``errors``, the cache hit ratio of the loaded run, the same
load without the cache (``rps_uncached``, ``ratio_uncached``, ``p50_uncached_ms``,
``p99_uncached_ms``), and where the time of the unloaded requests went: mean milliseconds
per request-path stage and per outcome (``ranked`` is the whole request inside the
service, cache lookup included).

Needs ``wrk`` (Debian/Ubuntu: ``sudo apt-get install wrk``; macOS: ``brew install wrk``).
Usage: ``python -m benchmarks.serving [--workers 2] [--connections 16] [--duration 15]``.
Connections default to 16: wrk keeps every connection busy, so latency is about
connections / throughput and a tail under 50 ms needs fewer connections than a 32-connection
run at 600 requests per second would give (32 / 600 s = 53 ms on average).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd

from benchmarks.serving_wrk import run_wrk
from recsys.models.registry import CHAMPION, alias_version
from recsys.platform.settings import PROJECT_ROOT, get_settings

BENTOML = str(Path(sys.executable).with_name("bentoml"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_champion() -> None:
    """Run the platform pipeline when MLflow holds no champion yet (the service loads it)."""
    from mlflow import MlflowClient

    settings = get_settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    if alias_version(client, settings.model_name, CHAMPION) is not None:
        return
    log("no trained champion in .data: running `python -m orchestration.run` first")
    subprocess.run([sys.executable, "-m", "orchestration.run"], check=True, cwd=PROJECT_ROOT)


def api_headers() -> dict[str, str]:
    """Credentials for the service (an admin key in the platform's key store)."""
    from serving.auth import Role
    from serving.keys import store

    _, key = store().create(Role.ADMIN, "bench-serving")
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(target: str, workers: int, env: dict[str, str]):  # noqa: ANN201
    """``bentoml serve target`` on a free port; yields the base URL once ready."""
    port = free_port()
    proc = subprocess.Popen(
        [BENTOML, "serve", target, "--port", str(port)], cwd=PROJECT_ROOT,
        env={**os.environ, **env, "RECSYS_SERVING_WORKERS": str(workers)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{target} did not become ready")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def clear_response_cache() -> int:
    """Start cold: drop the cached responses a previous run left (they live for the TTL)."""
    import redis

    from recsys.platform.redis_server import resolve_redis
    from serving.cache import PREFIX

    client = redis.Redis.from_url(resolve_redis(get_settings()).url)
    keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
    return client.delete(*keys) if keys else 0


def users() -> list[str]:
    valid = pd.read_parquet(get_settings().warehouse_dir / "validated_events", columns=["user_id"])
    return sorted(valid["user_id"].astype(str).unique())


def scrape(url: str) -> dict[str, float]:
    """The service's counters: cache lookups by result, and per-stage and per-outcome
    time sums and counts (``stage:<name>:sum`` ...), added up over workers."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    patterns = {
        r'^recsys_cache_requests_total\{result="(\w+)"\} (\S+)$': "cache:{}",
        r'^recsys_stage_seconds_(sum|count)\{stage="(\w+)"\} (\S+)$': "stage:{1}:{0}",
        r'^recsys_recommend_seconds_(sum|count)\{outcome="(\w+)"\} (\S+)$': "outcome:{1}:{0}",
    }
    counts: dict[str, float] = {}
    for pattern, name in patterns.items():
        for *labels, value in re.findall(pattern, text, flags=re.M):
            key = name.format(*labels)
            counts[key] = counts.get(key, 0.0) + float(value)
    return counts


def mean_ms(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, float]:
    """Mean milliseconds per observation of each ``prefix:<name>`` between two scrapes."""
    out = {}
    for key in after:
        if key.startswith(prefix) and key.endswith(":sum"):
            name = key[len(prefix):-len(":sum")]
            count = after[f"{prefix}{name}:count"] - before.get(f"{prefix}{name}:count", 0.0)
            if count:
                out[name] = round((after[key] - before.get(key, 0.0)) / count * 1000, 3)
    return out


def freshness(url: str, user_ids: list[str], trials: int,
              headers: dict[str, str]) -> list[float]:
    """Milliseconds from posting a view of the top item until it leaves the list."""
    out = []
    with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
        for user in user_ids[:trials]:
            top = client.get(f"/api/v1/recs/{user}").json()["items"][0]["item_id"]
            now = pd.Timestamp.now(tz="UTC")
            event = {"event_id": f"bench-{now.value}", "user_id": user, "item_id": top,
                     "event_type": "view", "timestamp": now.isoformat()}
            start = time.perf_counter()
            client.post("/events", json=event).raise_for_status()
            while top in [i["item_id"] for i in client.get(f"/api/v1/recs/{user}").json()["items"]]:
                if time.perf_counter() - start > 10:
                    break
            out.append((time.perf_counter() - start) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=15, help="seconds under load")
    parser.add_argument("--unloaded", type=int, default=5, help="seconds on one connection")
    parser.add_argument("--trials", type=int, default=5, help="freshness trials")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk is missing: install it (Debian/Ubuntu: `sudo apt-get install wrk`, "
            "macOS: `brew install wrk`) and rerun")
        return 2
    ensure_champion()
    log(f"dropped {clear_response_cache()} cached users from an earlier run")
    user_ids = users()
    headers = api_headers()
    with tempfile.TemporaryDirectory() as tmp:
        paths = Path(tmp) / "paths.txt"
        paths.write_text("".join(f"/api/v1/recs/{u}?limit=10\n" for u in user_ids))
        prom = Path(tmp) / "prometheus"
        prom.mkdir()
        env = {"PROMETHEUS_MULTIPROC_DIR": str(prom)}
        log(f"empty endpoint, {args.workers} worker(s)")
        with serve("benchmarks.serving_empty:EmptyService", args.workers, env) as url:
            run_wrk(url, paths, 1, 1, 2, headers)  # warm-up
            empty_unloaded = run_wrk(url, paths, 1, 1, args.unloaded, headers)
            empty = run_wrk(url, paths, args.connections, args.threads, args.duration, headers)
        log(f"recommendation service, {args.workers} worker(s)")
        with serve("serving.service:RecommendationService", args.workers, env) as url:
            run_wrk(url, paths, 1, 1, 2, headers)  # the same warm-up, then a cold cache again
            time.sleep(0.5)  # let the write-behind queue drain before dropping what it wrote
            clear_response_cache()
            start = scrape(url)
            unloaded = run_wrk(url, paths, 1, 1, args.unloaded, headers)
            before = scrape(url)
            loaded = run_wrk(url, paths, args.connections, args.threads, args.duration, headers)
            after = scrape(url)
            fresh = freshness(url, user_ids[::97], args.trials, headers)
        log("recommendation service without its response cache (every request ranked)")
        no_cache = {**env, "RECSYS_SERVING_CACHE_TTL_SECONDS": "0"}
        with serve("serving.service:RecommendationService", args.workers, no_cache) as url:
            run_wrk(url, paths, 1, 1, 2, headers)
            uncached = run_wrk(url, paths, args.connections, args.threads, args.duration, headers)
    hits = after.get("cache:hit", 0) - before.get("cache:hit", 0)
    misses = after.get("cache:miss", 0) - before.get("cache:miss", 0)
    result = {
        "rps": round(loaded["rps"], 1),
        "rps_empty": round(empty["rps"], 1),
        "ratio": round(loaded["rps"] / empty["rps"], 3),
        "p50_ms": round(unloaded["p50_ms"], 3),
        "p99_ms": round(loaded["p99_ms"], 3),
        "p50_empty_ms": round(empty_unloaded["p50_ms"], 3),
        "p50_loaded_ms": round(loaded["p50_ms"], 3),
        "p99_empty_ms": round(empty["p99_ms"], 3),
        "freshness_ms": round(sorted(fresh)[len(fresh) // 2], 2),
        "freshness_max_ms": round(max(fresh), 2),
        "errors": loaded["errors"] + unloaded["errors"] + uncached["errors"],
        "cache_hit_ratio": round(hits / max(hits + misses, 1), 3),
        "rps_uncached": round(uncached["rps"], 1),
        "ratio_uncached": round(uncached["rps"] / empty["rps"], 3),
        "p50_uncached_ms": round(uncached["p50_ms"], 3),
        "p99_uncached_ms": round(uncached["p99_ms"], 3),
        "unloaded_stage_ms": mean_ms(start, before, "stage:"),
        "unloaded_outcome_ms": mean_ms(start, before, "outcome:"),
        "workers": args.workers, "connections": args.connections, "duration_s": args.duration,
        "users": len(user_ids),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What ``benchmarks/serving.py`` needs around wrk: start a service and time its start and
memory, credentials, the response cache, the service's counters, Redis bytes per entity."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from recsys.platform.settings import PROJECT_ROOT, get_settings

BENTOML = str(Path(sys.executable).with_name("bentoml"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def api_headers() -> dict[str, str]:
    """Credentials for the service (an admin key in the platform's key store)."""
    from serving.auth import Role
    from serving.keys import store

    _, key = store().create(Role.ADMIN, "bench-serving")
    return {"Authorization": f"Bearer {key}"}


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A free local port: the first of ``RECSYS_BENCH_PORTS`` (``low-high``) when set (a
    shared machine's agreed range), else one the system picks."""
    import socket

    low, _, high = os.environ.get("RECSYS_BENCH_PORTS", "0-0").partition("-")
    for port in range(int(low), int(high) + 1):
        if port and port in _GIVEN_PORTS:  # given to a server that may not listen yet
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _GIVEN_PORTS.add(sock.getsockname()[1])
            return sock.getsockname()[1]
    raise OSError(f"no free port in RECSYS_BENCH_PORTS={low}-{high}")


def worker_rss_mb(pid: int) -> float:
    """Mean resident memory (MiB) of the worker processes under ``bentoml serve`` ``pid``."""
    workers = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "worker" in " ".join(child.cmdline()):
                workers.append(child.memory_info().rss)
        except psutil.Error:
            continue
    return round(sum(workers) / len(workers) / 2**20, 1) if workers else 0.0


@contextmanager
def serve_all(specs: dict[str, tuple[str, int, dict[str, str]]]
              ) -> Iterator[dict[str, tuple[str, dict]]]:
    """``bentoml serve target`` for each ``name: (target, workers, env)`` on a free port, all
    started at once; yields ``{name: (base URL, info)}`` once every one is ready, with info
    ``{"ready_s": seconds from start to ready, "rss_mb_per_worker": ...}``."""
    start = time.monotonic()
    procs: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for name, (target, workers, env) in specs.items():
            port = free_port()
            procs[name] = (subprocess.Popen(
                [BENTOML, "serve", target, "--port", str(port)], cwd=PROJECT_ROOT,
                env={**os.environ, **env, "RECSYS_SERVING_WORKERS": str(workers)},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ), f"http://127.0.0.1:{port}")
        ready: dict[str, tuple[str, dict]] = {}
        while len(ready) < len(procs):
            for name, (proc, url) in procs.items():
                if name in ready:
                    continue
                try:
                    if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                        ready[name] = (url, {"ready_s": round(time.monotonic() - start, 2),
                                             "rss_mb_per_worker": worker_rss_mb(proc.pid),
                                             "pid": proc.pid})
                        continue
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() - start > 600:
                    raise RuntimeError(f"{specs[name][0]} did not become ready")
            time.sleep(0.25)
        yield ready
    finally:
        for proc, _ in procs.values():
            proc.terminate()
        for proc, _ in procs.values():
            proc.wait(timeout=30)


@contextmanager
def serve(target: str, workers: int, env: dict[str, str]) -> Iterator[str]:
    """``bentoml serve target`` on a free port; yields the base URL once ready."""
    with serve_all({"one": (target, workers, env)}) as ready:
        yield ready["one"][0]


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) used so far by ``pid`` and every process under it."""
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def redis_cpu_seconds() -> float:
    """CPU seconds the Redis server has used (``INFO cpu``)."""
    info = redis_client().info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_client():  # noqa: ANN201
    import redis

    from recsys.platform.redis_server import resolve_redis

    return redis.Redis.from_url(resolve_redis(get_settings()).url)


def clear_response_cache() -> int:
    """Start cold: drop the cached responses a previous run left (they live for the TTL)."""
    from serving.cache import PREFIX

    client = redis_client()
    keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
    return client.delete(*keys) if keys else 0


def scrape(url: str) -> dict[str, float]:
    """The service's counters: cache lookups by result, and per-stage and per-outcome
    time sums and counts (``stage:<name>:sum`` ...), added up over workers."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    patterns = {
        r'^recsys_cache_requests_total\{result="(\w+)"\} (\S+)$': "cache:{}",
        r'^recsys_fallbacks_total\{reason="([^"]+)"\} (\S+)$': "fallback:{}",
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


def redis_bytes(user_ids: list[str], item_ids: list[str], sample: int = 200) -> dict[str, float]:
    """Mean bytes (``MEMORY USAGE``) of a user's and of an item's online-store hash, over the
    rows found among a sample of the ids (and the share found), and Redis's used memory."""
    from recsys.features.names import RANKER_SERVICE, USER_CONTEXT_SERVICE
    from recsys.features.online_reader import EntityFeatureReader
    from recsys.features.reads import entity_feature_refs
    from recsys.features.store import get_feature_store

    store = get_feature_store()
    client = redis_client()
    out: dict[str, float] = {}
    for name, ids, services, join_key in (
        ("user", user_ids, [RANKER_SERVICE, USER_CONTEXT_SERVICE], "user_id"),
        ("item", item_ids, [RANKER_SERVICE], "item_id"),
    ):
        reader = EntityFeatureReader(store, entity_feature_refs(store, services, join_key),
                                     join_key)
        step = max(1, len(ids) // sample)
        sizes = [client.memory_usage(reader.hash_read(i)[0], samples=0)
                 for i in ids[::step][:sample]]
        found = [size for size in sizes if size]  # an id without a row (no event) has none
        out[f"bytes_per_{name}"] = round(sum(found) / max(len(found), 1), 1)
        out[f"{name}_rows_found"] = round(len(found) / max(len(sizes), 1), 3)
    out["used_memory_mb"] = round(client.info("memory")["used_memory"] / 2**20, 1)
    return out

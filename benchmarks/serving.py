"""Load benchmark of the recommendation service against an empty BentoML endpoint.

Protocol: start, side by side and with the same worker count, the empty service of
``benchmarks/serving_empty.py``, the recommendation service on the trained champion
(``.data``; when no champion exists the script first runs ``python -m orchestration.run``)
and the same service with its response cache off (every request ranked). Each gets a 2 s
warm-up on one connection; the cached service's cache is then emptied. Then ``--rounds``
rounds, each: one wrk connection for ``--unloaded`` seconds on the empty endpoint and on the
uncached service (unloaded latency of a ranked request), then ``--connections`` connections
for ``--duration`` seconds on each of the three and on the cached service with impression
logging off (``RECSYS_SERVING_IMPRESSIONS=false``: ``impression_cost`` is the throughput it
costs, 1 - with / without within a round) (throughput and tail latency), in an order
that rotates every round. Ratios are taken within a round (a busy neighbour slows both sides
of one ratio alike) and reported as the median over the rounds with their spread (min, max).
Every request asks for another user in turn (all users of the validated events). Then
freshness: post a view event of a user's first recommended item and time until a
recommendation no longer contains it (median of ``--trials``).

Prints progress on stderr and one JSON object last on stdout: ``rps``, ``rps_empty``,
``ratio``, ``p99_ms`` (cached service under load), ``p50_ms`` / ``p50_empty_ms`` (one
connection, unloaded, ranked), ``freshness_ms``, ``errors``, ``cache_hit_ratio`` of the loaded
cached runs, ``rps_uncached``, ``ratio_uncached``, ``p50_uncached_ms``, ``p99_uncached_ms``,
``*_spread`` ([min, max] over the rounds), ``cpu_ms_<service>`` (CPU milliseconds per answered
request under load, the service's processes; ``redis_cpu_ms_<service>`` Redis's) and
``cpu_ratio_uncached`` / ``cpu_ratio`` (empty / (service + Redis), per round: the throughput
ratio on a machine of their own, steadier than ``ratio`` on a shared one), the load average at
the end, the mean milliseconds per request-path stage and per
outcome of the unloaded ranked requests (``ranked`` is the whole request inside the service;
``access`` is authentication with the rate limits), each service's resident memory per worker
and start time, and Redis memory per user and per item.

Needs ``wrk`` (Debian/Ubuntu: ``sudo apt-get install wrk``; macOS: ``brew install wrk``).
Usage: ``python -m benchmarks.serving [--workers 2] [--connections 16] [--duration 10]
[--rounds 3]``. Connections default to 16: wrk keeps every connection busy, so latency is
about connections / throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pandas as pd

from benchmarks.serving_probe import (
    api_headers,
    clear_response_cache,
    cpu_seconds,
    log,
    mean_ms,
    redis_bytes,
    redis_cpu_seconds,
    scrape,
    serve_all,
)
from benchmarks.serving_wrk import run_wrk
from recsys.models.registry import CHAMPION, alias_version
from recsys.platform.settings import PROJECT_ROOT, get_settings


def ensure_champion() -> None:
    """Run the platform pipeline when MLflow holds no champion yet (the service loads it)."""
    from mlflow import MlflowClient

    settings = get_settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    if alias_version(client, settings.model_name, CHAMPION) is not None:
        return
    log("no trained champion in .data: running `python -m orchestration.run` first")
    subprocess.run([sys.executable, "-m", "orchestration.run"], check=True, cwd=PROJECT_ROOT)


def users() -> list[str]:
    return entities()[0]


def entities() -> tuple[list[str], list[str]]:
    """The users and the items of the validated events."""
    valid = pd.read_parquet(get_settings().warehouse_dir / "validated_events",
                            columns=["user_id", "item_id"])
    return (sorted(valid["user_id"].astype(str).unique()),
            sorted(valid["item_id"].astype(str).unique()))


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


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def spread(values: list[float]) -> list[float]:
    return [round(min(values), 3), round(max(values), 3)]


def loaded_run(url: str, pid: int, paths: Path, args: argparse.Namespace,
               headers: dict[str, str]) -> dict:
    """One loaded wrk run, with the CPU milliseconds per answered request that the service's
    processes (``cpu_ms``) and Redis (``redis_cpu_ms``) spent meanwhile: on a shared machine
    these hold far better than throughput, which follows the neighbours' load."""
    cpu, redis_cpu = cpu_seconds(pid), redis_cpu_seconds()
    result = run_wrk(url, paths, args.connections, args.threads, args.duration, headers)
    answered = max(result["requests"], 1)
    result["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / answered
    result["redis_cpu_ms"] = (redis_cpu_seconds() - redis_cpu) * 1000 / answered
    return result


def rounds(services: dict, pids: dict[str, int], paths: Path, args: argparse.Namespace,
           headers: dict[str, str]) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """The interleaved rounds: wrk results per phase name, and the stage timings of the
    unloaded ranked requests."""
    runs: dict[str, list[dict]] = {}
    stages: dict[str, float] = {}
    loaded = ["empty", "cached", "uncached", "cached_no_impressions"]
    for number in range(args.rounds):
        log(f"round {number + 1}/{args.rounds}")
        runs.setdefault("empty_unloaded", []).append(
            run_wrk(services["empty"], paths, 1, 1, args.unloaded, headers))
        before = scrape(services["uncached"])
        runs.setdefault("unloaded", []).append(
            run_wrk(services["uncached"], paths, 1, 1, args.unloaded, headers))
        after = scrape(services["uncached"])
        for prefix in ("stage:", "outcome:"):
            for name, value in mean_ms(before, after, prefix).items():
                stages[name] = stages.get(name, 0.0) + value / args.rounds
        turn = number % len(loaded)
        for name in loaded[turn:] + loaded[:turn]:
            scraped = scrape(services[name]) if name == "cached" else None
            runs.setdefault(name, []).append(
                loaded_run(services[name], pids[name], paths, args, headers))
            if scraped is not None:
                after = scrape(services[name])
                for result in ("cache:hit", "cache:miss", *(k for k in after if "fallback:" in k)):
                    runs.setdefault(result, []).append(
                        {"n": after.get(result, 0) - scraped.get(result, 0)})
    return runs, {k: round(v, 3) for k, v in stages.items()}


def summary(runs: dict[str, list[dict]]) -> dict[str, object]:
    """The JSON figures of the rounds: medians of per-round values, and their spread."""
    def per_round(name: str, key: str) -> list[float]:
        return [r[key] for r in runs[name]]

    empty = per_round("empty", "rps")
    ratio = [c / e for c, e in zip(per_round("cached", "rps"), empty, strict=True)]
    ratio_uncached = [u / e for u, e in zip(per_round("uncached", "rps"), empty, strict=True)]
    hits = sum(r["n"] for r in runs["cache:hit"])
    misses = sum(r["n"] for r in runs["cache:miss"])
    return {
        "rps": median(per_round("cached", "rps")),
        "rps_empty": median(per_round("empty", "rps")),
        "ratio": median(ratio), "ratio_spread": spread(ratio),
        "p50_ms": median(per_round("unloaded", "p50_ms")),
        "p50_spread": spread(per_round("unloaded", "p50_ms")),
        "p50_empty_ms": median(per_round("empty_unloaded", "p50_ms")),
        "p99_ms": median(per_round("cached", "p99_ms")),
        "p50_loaded_ms": median(per_round("cached", "p50_ms")),
        "p99_empty_ms": median(per_round("empty", "p99_ms")),
        "errors": sum(r["errors"] for name in ("cached", "uncached", "unloaded")
                      for r in runs[name]),
        "cache_hit_ratio": round(hits / max(hits + misses, 1), 3),
        "cache_lookups": {"hit": hits, "miss": misses},
        "fallbacks_cached": {k.split(":", 1)[1]: sum(r["n"] for r in v)
                             for k, v in runs.items() if k.startswith("fallback:")},
        "rps_no_impressions": median(per_round("cached_no_impressions", "rps")),
        "ratio_no_impressions": median(
            [n / e for n, e in zip(per_round("cached_no_impressions", "rps"), empty,
                                   strict=True)]),
        # the throughput impression logging costs, within each round (1 - with / without)
        "impression_cost": median([1 - c / n for c, n in zip(
            per_round("cached", "rps"), per_round("cached_no_impressions", "rps"),
            strict=True)]),
        "rps_uncached": median(per_round("uncached", "rps")),
        "ratio_uncached": median(ratio_uncached), "ratio_uncached_spread": spread(ratio_uncached),
        "p50_uncached_ms": median(per_round("uncached", "p50_ms")),
        "p99_uncached_ms": median(per_round("uncached", "p99_ms")),
        "p99_uncached_spread": spread(per_round("uncached", "p99_ms")),
        # CPU per answered request under load (service processes; Redis apart), and the
        # ratio they imply for a machine of its own: empty / (service + Redis)
        **{f"cpu_ms_{name}": median(per_round(name, "cpu_ms"))
           for name in ("empty", "cached", "uncached")},
        **{f"redis_cpu_ms_{name}": median(per_round(name, "redis_cpu_ms"))
           for name in ("cached", "uncached")},
        "cpu_ratio_uncached": median([e["cpu_ms"] / (u["cpu_ms"] + u["redis_cpu_ms"]) for e, u in
                                      zip(runs["empty"], runs["uncached"], strict=True)]),
        "cpu_ratio": median([e["cpu_ms"] / (c["cpu_ms"] + c["redis_cpu_ms"]) for e, c in
                             zip(runs["empty"], runs["cached"], strict=True)]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds under load")
    parser.add_argument("--unloaded", type=int, default=4, help="seconds on one connection")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--trials", type=int, default=5, help="freshness trials")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk is missing: install it (Debian/Ubuntu: `sudo apt-get install wrk`, "
            "macOS: `brew install wrk`) and rerun")
        return 2
    ensure_champion()
    log(f"dropped {clear_response_cache()} cached users from an earlier run")
    user_ids, item_ids = entities()
    headers = api_headers()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        paths = Path(tmp) / "paths.txt"
        paths.write_text("".join(f"/api/v1/recs/{u}?limit=10\n" for u in user_ids))
        targets = {
            "empty": ("benchmarks.serving_empty:EmptyService", {}),
            "cached": ("serving.service:RecommendationService", {}),
            "uncached": ("serving.service:RecommendationService",
                         {"RECSYS_SERVING_CACHE_TTL_SECONDS": "0"}),
            "cached_no_impressions": ("serving.service:RecommendationService",
                                      {"RECSYS_SERVING_IMPRESSIONS": "false"}),
        }
        specs = {}
        for name, (target, env) in targets.items():
            # BentoML keeps its metric files under BENTOML_HOME and empties them at start:
            # a home each, or each service would wipe (and then report) the others' metrics
            # (the service reads its model from MLflow, not from BentoML's store).
            home = Path(tmp) / f"bentoml-{name}"
            specs[name] = (target, args.workers, {**env, "BENTOML_HOME": str(home)})
        log(f"starting the empty, cached, uncached and impression-less services, "
            f"{args.workers} worker(s) each")
        ready = stack.enter_context(serve_all(specs))
        services = {name: url for name, (url, _) in ready.items()}
        started = {name: info for name, (_, info) in ready.items()}
        for url in services.values():
            run_wrk(url, paths, 1, 1, 2, headers)  # warm-up
        time.sleep(0.5)  # let the write-behind queue drain before dropping what it wrote
        clear_response_cache()
        pids = {name: info["pid"] for name, info in started.items()}
        runs, stages = rounds(services, pids, paths, args, headers)
        fresh = freshness(services["cached"], user_ids[::97], args.trials, headers)
        memory = {name: info["rss_mb_per_worker"] for name, info in started.items()}
    result = {
        **summary(runs),
        "freshness_ms": round(sorted(fresh)[len(fresh) // 2], 2),
        "freshness_max_ms": round(max(fresh), 2),
        "unloaded_stage_ms": {k: v for k, v in stages.items() if k not in _OUTCOMES},
        "unloaded_outcome_ms": {k: v for k, v in stages.items() if k in _OUTCOMES},
        "rss_mb_per_worker": memory,
        "engine_mb_per_worker": round(memory["uncached"] - memory["empty"], 1),
        "start_s": {name: info["ready_s"] for name, info in started.items()},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "redis": redis_bytes(user_ids, item_ids),
        "workers": args.workers, "connections": args.connections, "duration_s": args.duration,
        "rounds": args.rounds, "users": len(user_ids),
    }
    print(json.dumps(result))
    return 0


_OUTCOMES = ("ranked", "cached", "fallback")

if __name__ == "__main__":
    sys.exit(main())

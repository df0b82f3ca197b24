"""The capacity model of ``benchmarks/capacity.py``: measured figures in, fleet size out.

Costs are in core-seconds per request, the CPU the service's processes used per answered
request under saturation. The cached run answers a share ``h_run`` of its requests from the
cache, so its cost is the mix ``h_run * hit + (1 - h_run) * miss``, with ``miss`` the cost of
the uncached run; that gives the cost of a hit, and any hit ratio h costs
``h * hit + (1 - h) * miss``. A fleet runs at the highest measured load level (share of
saturation) whose p99 stayed under the objective in both runs.

Redis: bytes per user (Feast's row, plus a cached response while the user is active within the
cache's TTL) and per item (Feast's row) as measured, times an allowance for fragmentation and
replication buffers; a primary holds ``PRIMARY_DATA_BYTES`` of data (a planning assumption, for
a node of 32 GiB) and spends at most ``PRIMARY_CPU_SHARE`` of its one command thread, at the
Redis CPU per request measured (``INFO cpu``).
"""

from __future__ import annotations

import math

HIT_RATIOS = (0.0, 0.5, 0.9)
REPLICA_CORES = 2  # deploy/k8s/service.yaml: 2 workers, 2 cores a pod
MIN_REPLICAS = 5  # deploy/k8s/autoscaling.yaml
MEMORY_ALLOWANCE = 1.3  # fragmentation, replication and client buffers
PRIMARY_DATA_BYTES = 16 * 2**30
PRIMARY_CPU_SHARE = 0.5
PLANNING_LEVEL = 0.7  # the level a fleet would run at where p99 holds there
WORLDS = ((1_000_000, 100_000), (10_000_000, 1_000_000), (100_000_000, 10_000_000))


def hit_cost(cached: dict, miss: float) -> float:
    """Core-seconds of one cache hit, from the cached run's mix of hits and misses."""
    mixed = cached["cpu_ms_per_request"] / 1000
    h_run = cached["cache_hit_ratio"]
    if h_run <= 0:
        return miss
    return max((mixed - (1 - h_run) * miss) / h_run, 0.0)


def safe_level(runs: dict, p99_ms: float) -> float:
    """The highest load level (share of saturation) with p99 under the objective in every run;
    half of saturation when none kept it (the table then says so)."""
    levels = [float(name.rstrip("%")) / 100 for name in next(iter(runs.values()))["levels"]]
    ok = [level for level in levels
          if all(run["levels"][f"{level:.0%}"]["p99_ms"] <= p99_ms for run in runs.values())]
    return max(ok) if ok else min(levels) / 2


def model(runs: dict, memory: dict, cores: float, target_rps: float, p99_ms: float) -> dict:
    """Fleet for ``target_rps`` at p99 <= ``p99_ms`` per hit ratio, and Redis sizes."""
    miss = runs["uncached"]["cpu_ms_per_request"] / 1000
    hit = hit_cost(runs["cached"], miss)
    level = safe_level(runs, p99_ms)
    measured = [float(name.rstrip("%")) / 100 for name in runs["uncached"]["levels"]]
    cmd_miss = runs["uncached"]["redis_commands_per_request"]["total"]
    h_run = runs["cached"]["cache_hit_ratio"]
    cmd_mixed = runs["cached"]["redis_commands_per_request"]["total"]
    cmd_hit = (cmd_mixed - (1 - h_run) * cmd_miss) / h_run if h_run > 0 else cmd_miss
    fleet = {}
    for ratio in HIT_RATIOS:
        per_core = 1 / (ratio * hit + (1 - ratio) * miss)
        needed = math.ceil(target_rps / (per_core * level))
        planned = math.ceil(target_rps / (per_core * PLANNING_LEVEL))
        commands = ratio * cmd_hit + (1 - ratio) * cmd_miss
        fleet[f"{ratio:.0%}"] = {
            "rps_per_core": round(per_core, 1), "cores": needed,
            "replicas": max(MIN_REPLICAS, math.ceil(needed / REPLICA_CORES)),
            "cores_at_70": planned,
            "replicas_at_70": max(MIN_REPLICAS, math.ceil(planned / REPLICA_CORES)),
            "redis_commands_per_request": round(commands, 2),
            "redis_commands_per_second": round(commands * target_rps),
        }
    per_user = memory.get("user_row", {}).get("bytes_per_key", 0.0)
    per_cached = memory.get("cached_response", {}).get("bytes_per_key", 0.0)
    per_item = memory.get("item_row", {}).get("bytes_per_key", 0.0)
    redis_cpu = max(run["redis_cpu_ms_per_request"] for run in runs.values()) / 1000
    command_primaries = math.ceil(target_rps * redis_cpu / PRIMARY_CPU_SHARE)
    clusters = []
    for users, items in WORLDS:
        rows = (users * per_user + items * per_item) * MEMORY_ALLOWANCE
        cached = users * per_cached * MEMORY_ALLOWANCE
        primaries = max(3, math.ceil((rows + cached) / PRIMARY_DATA_BYTES),
                        command_primaries)
        clusters.append({"users": users, "items": items, "rows_gib": round(rows / 2**30, 1),
                         "rows_and_cache_gib": round((rows + cached) / 2**30, 1),
                         "primaries": primaries})
    return {
        "target_rps": target_rps, "p99_objective_ms": p99_ms, "load_level": level,
        "objective_kept": level in measured,
        "core_ms_per_request": {"hit": round(hit * 1000, 3), "miss": round(miss * 1000, 3)},
        "fleet": fleet,
        "redis_cpu_ms_per_request": round(redis_cpu * 1000, 4),
        "redis_bytes": {"per_user_row": per_user, "per_cached_response": per_cached,
                        "per_item_row": per_item},
        "redis_cluster": clusters,
    }


def table(result: dict) -> str:
    """The README's capacity tables (markdown) from one run's result."""
    m, runs = result["model"], result["runs"]
    lines = [
        f"Measured ({result['cores']:g} cores, {result['workers']} workers): saturation "
        f"{runs['cached']['saturation_rps']:,.0f} requests/s with the cache (hit ratio "
        f"{runs['cached']['cache_hit_ratio']:.2f}), {runs['uncached']['saturation_rps']:,.0f} "
        f"without; a hit costs {m['core_ms_per_request']['hit']} core-ms, a miss "
        f"{m['core_ms_per_request']['miss']} (CPU of the service's processes per request)."
        + ("" if m["objective_kept"] else f" No measured load level kept p99 ≤ "
           f"{m['p99_objective_ms']:g} ms: the fleet below runs at {m['load_level']:.0%} "
           "of saturation, an extrapolation."),
        "",
        "| run | p99 at 50 % | p99 at 70 % | p99 at 90 % of saturation | Redis commands/request |",
        "|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        p99 = [f"{run['levels'][k]['p99_ms']:.1f} ms" for k in ("50%", "70%", "90%")]
        lines.append(f"| {name} | {' | '.join(p99)} | "
                     f"{run['redis_commands_per_request']['total']} |")
    lines += [
        "",
        f"| cache hit ratio | requests/s per core | cores for {m['target_rps']:,.0f}/s "
        f"(at {m['load_level']:.0%} of saturation, p99 ≤ {m['p99_objective_ms']:g} ms) "
        "| 2-core replicas | cores (replicas) at 70 % of saturation, where p99 holds there "
        "| Redis commands/s |",
        "|---|---|---|---|---|---|",
    ]
    for ratio, fleet in m["fleet"].items():
        lines.append(f"| {ratio} | {fleet['rps_per_core']:,.0f} | {fleet['cores']} | "
                     f"{fleet['replicas']} | {fleet['cores_at_70']} ({fleet['replicas_at_70']}) | "
                     f"{fleet['redis_commands_per_second']:,} |")
    b = m["redis_bytes"]
    lines += [
        "",
        f"Redis bytes: {b['per_user_row']:,.0f} per user (Feast row) + "
        f"{b['per_cached_response']:,.0f} per cached response, {b['per_item_row']:,.0f} per item; "
        f"Redis CPU {m['redis_cpu_ms_per_request']} ms per request (a primary kept under "
        f"{PRIMARY_CPU_SHARE:.0%} of its core).",
        "",
        "| users | items | Redis memory, rows | + every user's response cached | primaries "
        "(each with a replica) |",
        "|---|---|---|---|---|",
    ]
    for c in m["redis_cluster"]:
        lines.append(f"| {c['users']:,} | {c['items']:,} | {c['rows_gib']} GiB | "
                     f"{c['rows_and_cache_gib']} GiB | {c['primaries']} |")
    return "\n".join(lines)

"""The capacity model (benchmarks/capacity_model.py) turns measured figures into a fleet with
the arithmetic its docstring states, and the benchmark's Redis accounting classifies keys and
counts commands on a real Redis."""

import pytest
import redis

from benchmarks.capacity import cached_response_bytes, command_calls, commands_per_request
from benchmarks.capacity_model import model, table
from serving.cache import PREFIX


def run(rps: float, hit_ratio: float, p99: tuple[float, float, float], commands: float) -> dict:
    # the service used both cores at saturation: 2 cores / rps core-seconds a request
    return {"saturation_rps": rps, "cache_hit_ratio": hit_ratio, "cpu_ms_per_request": 2000 / rps,
            "redis_cpu_ms_per_request": 0.1,
            "redis_commands_per_request": {"total": commands},
            "levels": {k: {"p99_ms": v} for k, v in zip(("50%", "70%", "90%"), p99, strict=True)}}


# 2 cores: uncached 1,000/s (2 core-ms a miss); cached run all hits at 4,000/s (0.5 core-ms).
RUNS = {"cached": run(4000, 1.0, (5, 8, 40), 1.0), "uncached": run(1000, 0.0, (20, 60, 150), 3.0)}
MEMORY = {"user_row": {"bytes_per_key": 1000.0}, "item_row": {"bytes_per_key": 500.0},
          "cached_response": {"bytes_per_key": 2000.0}}


def test_capacity_model_sizes_the_fleet_from_costs_and_the_safe_load_level() -> None:
    m = model(RUNS, MEMORY, cores=2, target_rps=10_000, p99_ms=100)
    assert m["core_ms_per_request"] == {"hit": 0.5, "miss": 2.0}
    assert m["load_level"] == 0.7  # 90 % broke the objective in the uncached run
    assert m["objective_kept"]
    fleet = m["fleet"]
    assert fleet["0%"]["rps_per_core"] == 500.0
    assert fleet["0%"]["cores"] == 29  # 10,000 / (500 * 0.7) = 28.6
    assert fleet["0%"]["replicas"] == 15
    assert fleet["0%"]["cores_at_70"] == 29  # the level that held here is 70 % too
    assert fleet["90%"]["rps_per_core"] == pytest.approx(1 / (0.9 * 0.0005 + 0.1 * 0.002), 0.01)
    assert fleet["90%"]["replicas"] == 5  # the HPA's floor
    assert fleet["50%"]["redis_commands_per_second"] == 20_000


def test_capacity_model_recovers_the_hit_cost_from_a_mixed_cached_run() -> None:
    # half hits at 0.5 core-ms, half misses at 2 core-ms: 1.25 core-ms, 1,600/s on 2 cores
    mixed = {**RUNS, "cached": run(1600, 0.5, (5, 8, 40), 2.0)}
    m = model(mixed, MEMORY, cores=2, target_rps=10_000, p99_ms=100)
    assert m["core_ms_per_request"]["hit"] == pytest.approx(0.5)
    assert m["fleet"]["0%"]["redis_commands_per_request"] == 3.0
    assert m["fleet"]["90%"]["redis_commands_per_request"] == pytest.approx(1.2)


def test_capacity_model_sizes_redis_cluster_by_memory_and_commands() -> None:
    m = model(RUNS, MEMORY, cores=2, target_rps=10_000, p99_ms=100)
    small, middle, large = m["redis_cluster"]
    assert small["primaries"] == 3  # 10,000/s * 0.1 ms = 1 core: 2 primaries at 50 %; at least 3
    # 100M users * 1,000 B + 10M items * 500 B, * 1.3 = 127 GiB of rows
    assert large["rows_gib"] == pytest.approx(127.1, abs=0.1)
    assert large["primaries"] == 24  # (127 + 242 GiB with the cache) / 16 GiB = 23.1
    assert "| 90% |" in table({"model": m, "runs": RUNS, "cores": 2, "workers": 2})


def test_capacity_model_says_when_no_level_kept_the_objective() -> None:
    slow = {name: {**run, "levels": {k: {"p99_ms": 500} for k in run["levels"]}}
            for name, run in RUNS.items()}
    m = model(slow, MEMORY, cores=2, target_rps=10_000, p99_ms=100)
    assert m["load_level"] == 0.25 and not m["objective_kept"]
    assert m["fleet"]["0%"]["cores_at_70"] < m["fleet"]["0%"]["cores"]
    assert "an extrapolation" in table({"model": m, "runs": slow, "cores": 2, "workers": 2})


def test_capacity_redis_accounting_sizes_responses_and_counts_commands(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, db=15)  # a database of its own: it scans all keys
    client.flushdb()
    client.hset(b"\x02\x00\x00\x00user_id\x03u1recsys", "f", "1")
    client.hset(PREFIX + "u1", mapping={"body": "x" * 500})
    client.hset(PREFIX + "u2", mapping={"body": "x" * 1500})
    cached = cached_response_bytes(client)
    assert cached["keys"] == 2  # the Feast row is not a cached response
    assert 1000 < cached["bytes_per_key"] < 1400  # the mean of ~500 and ~1,500 bytes
    before = command_calls(client)
    for _ in range(10):
        client.hget(b"\x02\x00\x00\x00user_id\x03u1recsys", "f")
    per = commands_per_request(before, command_calls(client), requests=5)
    assert per["hget"] == 2.0 and per["total"] == 2.0  # INFO itself is not counted
    client.flushdb()

"""Fault and abuse benchmark of the recommendation service (``make bench-faults``).

Runs the real service (``bentoml serve``, 2 workers) on the trained champion, with Redis (the
embedded Valkey) behind a TCP proxy that can add latency, and prints progress on stderr and
one JSON object last on stdout:

* ``schemathesis_server_errors``: schemathesis against the service's OpenAPI with an admin
  key (all checks, a fixed seed): failures found (5xx, schema violations);
* ``unauthenticated_accepted``: requests to each protected operation without credentials,
  with a wrong key or with another user's token that got a 2xx;
* ``rate_limit_exact``: one user's 600 requests within a minute: answers by status;
* ``redis_outage_5xx``, ``events_acked``, ``events_lost``: under wrk load with a concurrent
  event writer, Redis is stopped for 10 s and restarted: non-2xx answers, events
  acknowledged, and acknowledged events missing from the log or (after the replay) from the
  users' online state;
* ``slow_redis_p99_ms``, ``slow_redis_5xx``: the same load while the proxy adds 300 ms;
* ``bad_model_5xx``: the champion alias moved to a version that cannot load, under load;
* ``soak_rss_growth_pct``: 60 s at saturation, growth of the service's RSS from the 10th to
  the 60th second.

Usage: ``python -m benchmarks.faults [--soak 60] [--examples 100]``. Needs wrk.
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
import threading
import time
import uuid
from pathlib import Path

import httpx
import jwt
import mlflow
import pandas as pd
import psutil
from mlflow import MlflowClient

from benchmarks.fault_proxy import LatencyProxy
from benchmarks.serving import ensure_champion, users
from benchmarks.serving_probe import api_headers, log, serve
from benchmarks.serving_wrk import run_wrk
from recsys.events.event_log import EventLog
from recsys.features.names import RECENT_ITEMS, feature_ref
from recsys.features.reads import online_entity_features
from recsys.features.store import get_feature_store
from recsys.models.registry import CHAMPION, alias_version
from recsys.platform.redis_server import resolve_redis, stop_embedded
from recsys.platform.settings import get_settings
from serving.access import RULES
from serving.auth import Role

JWT_SECRET = "bench-faults-" + uuid.uuid4().hex


#: Failures of these schemathesis checks are server errors or answers that break the
#: published API document; ``positive_data_acceptance`` (a schema-valid request refused) is
#: reported apart: the document cannot state every rule (a timestamp at most 5 minutes ahead
#: of the server's clock, a rating required for ``rate`` events).
VALID_REJECTED = "ST202"


def schemathesis_failures(url: str, headers: dict[str, str], examples: int) -> dict:
    """Run schemathesis with every check; read its summary: failures by check (the server
    errors and document violations apart from schema-valid requests refused), the operations
    they were found on, and the cases generated."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    # POST /api/v1/recs/train is left out: it starts real Dagster runs, and without a Dagster
    # webserver its documented answer is 503.
    command = [st, "run", f"{url}/openapi.json", "--url", url, "--checks", "all",
               "--exclude-path", "/api/v1/recs/train", "--seed", "42",
               "--max-examples", str(examples), "--no-color",
               *[arg for k, v in headers.items() for arg in ("--header", f"{k}: {v}")]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    out = done.stdout
    log(out[-4000:])
    by_check = {code: int(n) for code, n in re.findall(r"^\s*\S+ (ST\d+) [^:\n]+: (\d+)$", out,
                                                      flags=re.M)}
    operations: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if header := re.match(r"^_+ (\w+ \S+) _+$", line):
            current = header.group(1)
        elif current and (check := re.match(r"^- (ST\d+ .+?)(?: \(.*\))?$", line.strip())):
            operations.setdefault(current, []).append(check.group(1))
    generated = re.search(r"(\d+) generated", out)
    rejected = by_check.pop(VALID_REJECTED, 0)
    if done.returncode not in (0, 1) or generated is None:
        raise RuntimeError(f"schemathesis did not run: {done.stderr[-2000:]}")
    return {"failures": sum(by_check.values()), "by_check": by_check,
            "operations": operations, "valid_rejected": rejected,
            "cases": int(generated.group(1))}


def unauthenticated_accepted(url: str) -> int:
    """2xx answers to protected operations called without valid credentials."""
    other = jwt.encode({"sub": "someone-else", "exp": int(time.time()) + 60}, JWT_SECRET,
                       algorithm="HS256")
    attempts = [{}, {"Authorization": "Bearer rk_00000000_wrong"}, {"X-API-Key": "nope"},
                {"Authorization": f"Bearer {other}"}]
    accepted = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        for rule in RULES:
            if not isinstance(rule.role, Role):
                continue
            path = rule.path.replace("{user_id}", "victim").replace("{version}", "champion")
            body = {"user_id": "victim", "num_items": 3} if rule.path == "/recommend" else (
                {"events": [{"event_id": "x", "user_id": "victim", "item_id": "i1",
                             "event_type": "view", "timestamp": "2026-01-01T00:00:00Z"}]}
                if rule.path == "/events" else None)
            for headers in attempts:
                response = client.request(rule.method, path, headers=headers, json=body)
                accepted += response.is_success
    return accepted


def rate_limit(url: str, headers: dict[str, str], n: int = 600) -> dict[str, int]:
    user = f"rate-{uuid.uuid4().hex[:8]}"
    codes: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
        for _ in range(n):
            status = str(client.get(f"/api/v1/recs/{user}?limit=3").status_code)
            codes[status] = codes.get(status, 0) + 1
    return codes


class EventWriter(threading.Thread):
    """Posts one event per new user in a loop; remembers the acknowledged ones."""

    def __init__(self, url: str, headers: dict[str, str], items: list[str]):
        super().__init__(daemon=True)
        self.url, self.headers, self.items = url, headers, items
        self.acked: dict[str, tuple[str, str]] = {}  # event id -> (user, item)
        self.failed = 0
        self.failures: dict[str, int] = {}  # status code or exception name -> count
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10, headers=self.headers) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                user, item = f"writer-{uuid.uuid4().hex[:10]}", self.items[n % len(self.items)]
                event = {"event_id": f"w-{uuid.uuid4().hex}", "user_id": user, "item_id": item,
                         "event_type": "view", "timestamp": pd.Timestamp.now(tz="UTC")
                         .isoformat()}
                try:
                    response = client.post("/events", json=event)
                except httpx.HTTPError as exc:
                    self._failed(type(exc).__name__)
                    continue
                if response.status_code == 202:
                    self.acked[event["event_id"]] = (user, item)
                else:
                    self._failed(str(response.status_code))
                time.sleep(0.02)


    def _failed(self, why: str) -> None:
        self.failed += 1
        self.failures[why] = self.failures.get(why, 0) + 1


def lost_events(acked: dict[str, tuple[str, str]], wait: float = 60.0) -> int:
    """Acknowledged events missing from the event log, or from the online state once the
    outbox has been replayed (waits up to ``wait`` seconds for it)."""
    settings = get_settings()
    log_dir = EventLog(settings.event_log_dir)
    logged = set(pd.concat([log_dir.read_day(d) for d in log_dir.days()[-2:]])["event_id"])
    store = get_feature_store(settings)
    missing: set[str] = set()
    deadline = time.monotonic() + wait
    while True:
        users = [user for user, _ in acked.values()]
        found = online_entity_features(store, [feature_ref(RECENT_ITEMS)], "user_id", users)
        recent = dict(zip(users, found[RECENT_ITEMS], strict=True))
        missing = {e for e, (user, item) in acked.items() if item not in (recent[user] or [])}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    return len((set(acked) - logged) | missing)


def service_rss(url_port: int) -> int:
    """Resident memory of the process tree serving on ``url_port`` (bytes)."""
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == url_port and conn.status == "LISTEN" and conn.pid:
            root = psutil.Process(conn.pid)
            while root.parent() is not None and "bentoml" in " ".join(root.parent().cmdline()):
                root = root.parent()
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    raise RuntimeError(f"no process listens on {url_port}")


def register_broken_version(name: str) -> str:
    """A registered version whose files hold no recommender bundle: it cannot load."""

    class Broken(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            raise RuntimeError("broken")

    with mlflow.start_run(run_name="bench-faults-broken"):
        info = mlflow.pyfunc.log_model(name="recommender", python_model=Broken())
    return mlflow.register_model(info.model_uri, name).version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", type=int, default=60, help="seconds at saturation")
    parser.add_argument("--examples", type=int, default=100,
                        help="schemathesis examples per operation")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk is missing: install it (Debian/Ubuntu: `sudo apt-get install wrk`)")
        return 2
    ensure_champion()
    settings = get_settings()
    redis_port = int(resolve_redis(settings).url.rsplit(":", 1)[1].split("/")[0])
    proxy = LatencyProxy(redis_port)
    headers = api_headers()
    user_ids = users()
    result: dict[str, object] = {}
    env = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0", "RECSYS_AUTH_JWT_SECRET": JWT_SECRET,
           "RECSYS_SERVING_MODEL_POLL_SECONDS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        prom = Path(tmp) / "prometheus"
        prom.mkdir()
        paths = Path(tmp) / "paths.txt"
        paths.write_text("".join(f"/api/v1/recs/{u}?limit=10\n" for u in user_ids))
        with serve("serving.service:RecommendationService", 2,
                   {**env, "PROMETHEUS_MULTIPROC_DIR": str(prom)}) as url:
            log("schemathesis")
            found = schemathesis_failures(url, headers, args.examples)
            result["schemathesis_server_errors"] = found["failures"]
            result["schemathesis_by_check"] = found["by_check"]
            result["schemathesis_operations"] = found["operations"]
            result["schemathesis_valid_requests_rejected"] = found["valid_rejected"]
            result["schemathesis_cases"] = found["cases"]
            log("unauthenticated requests")
            result["unauthenticated_accepted"] = unauthenticated_accepted(url)
            log("rate limit: 600 requests of one user")
            result["rate_limit_exact"] = rate_limit(url, headers)

            log("bad model under load")
            mlflow.set_tracking_uri(settings.tracking_uri)
            client = MlflowClient()
            champion = alias_version(client, settings.model_name, CHAMPION).version
            broken = register_broken_version(settings.model_name)
            client.set_registered_model_alias(settings.model_name, CHAMPION, broken)
            try:
                loaded = run_wrk(url, paths, args.connections, 2, 10, headers)
            finally:
                client.set_registered_model_alias(settings.model_name, CHAMPION, champion)
            result["bad_model_5xx"] = loaded["errors"]

            log("slow Redis (300 ms) under load")
            proxy.delay = 0.3
            try:
                slow = run_wrk(url, paths, args.connections, 2, 10, headers)
            finally:
                proxy.delay = 0.0
            result["slow_redis_p99_ms"] = round(slow["p99_ms"], 1)
            result["slow_redis_5xx"] = slow["errors"]

            log("Redis stopped for 10 s under load, with an event writer")
            writer = EventWriter(url, headers, [f"i{i}" for i in range(1, 200)])
            writer.start()
            load: dict = {}
            loader = threading.Thread(target=lambda: load.update(
                run_wrk(url, paths, args.connections, 2, 25, headers)))
            loader.start()
            time.sleep(5)
            stop_embedded(settings)
            time.sleep(10)
            resolve_redis(settings)
            loader.join()
            time.sleep(3)
            writer.stop.set()
            writer.join()
            result["redis_outage_5xx"] = load["errors"] + writer.failed
            result["redis_outage_detail"] = {"wrk_errors": load["errors"],
                                             "writer_failures": writer.failures}
            result["events_acked"] = len(writer.acked)
            result["events_lost"] = lost_events(writer.acked)

            log(f"soak: {args.soak} s at saturation")
            port = int(url.rsplit(":", 1)[1])
            soak: dict = {}
            loader = threading.Thread(target=lambda: soak.update(
                run_wrk(url, paths, args.connections, 2, args.soak, headers)))
            loader.start()
            time.sleep(10)
            early = service_rss(port)
            loader.join()
            late = service_rss(port)
            result["soak_rss_growth_pct"] = round((late - early) / early * 100, 2)
            result["soak_rps"] = round(soak["rps"], 1)
            result["soak_errors"] = soak["errors"]
    proxy.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    sys.exit(main())

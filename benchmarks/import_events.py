"""Wall time of ``python -m orchestration.run --source events`` on a generated events file.

``python -m benchmarks.import_events`` writes 10,000 ratings over 10 years (ids that look like
numbers, no catalog; :mod:`recsys.events.sample_files`) into a temporary folder, runs the
import and ``platform_job`` there with their own data dir, Dagster home and MLflow store
(Redis: ``REDIS_URL`` or an embedded Valkey on a free port, stopped afterwards) and prints one
JSON object: events, partitions, seconds, and whether a champion was promoted.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

from recsys.events.sample_files import FileShape, write_events_folder
from recsys.platform.redis_server import resolve_redis, stop_embedded
from recsys.platform.settings import PROJECT_ROOT, Settings


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="recsys-import-") as tmp:
        root = Path(tmp)
        shape = FileShape()
        folder = write_events_folder(root / "input", shape)
        redis = Settings(data_dir=root / "valkey", embedded_redis_port=_free_port())
        url = os.environ.get("REDIS_URL") or resolve_redis(redis).url
        tracking = f"sqlite:///{root / 'mlflow.db'}"
        env = {**os.environ, "RECSYS_DATA_DIR": str(root / "data"), "REDIS_URL": url,
               "RECSYS_FEATURE_REPO_DIR": str(root / "repo"), "MLFLOW_TRACKING_URI": tracking,
               "DAGSTER_HOME": str(root / "data" / "dagster"),
               "BENTOML_HOME": str(root / "data" / "bentoml")}
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "orchestration.run", "--source", "events", "--path",
             str(folder / "events.csv")], env=env, cwd=PROJECT_ROOT, capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        try:
            champion = MlflowClient(tracking).get_model_version_by_alias("recsys", "champion")
            version = champion.version
        except Exception:  # noqa: BLE001 - no champion is a result, not an error
            version = None
        if not os.environ.get("REDIS_URL"):
            stop_embedded(redis)
        print(json.dumps({"benchmark": "import_events", "events": shape.n_events,
                          "years": shape.years, "exit_code": done.returncode,
                          "wall_seconds": round(seconds, 1), "champion_version": version}))
        return done.returncode


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())

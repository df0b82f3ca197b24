"""Native thread pools sized per worker: the variables before numpy loads, the pools after."""

import os
import subprocess
import sys

from serving.native_threads import VARIABLES, limit_loaded_pools


def test_importing_serving_sizes_the_pools_before_numpy_loads() -> None:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["RECSYS_SERVING_NATIVE_THREADS"] = "1"
    code = ("import serving, numpy, threadpoolctl, os; "
            "print(os.environ['OPENBLAS_NUM_THREADS'], "
            "max(p['num_threads'] for p in threadpoolctl.threadpool_info()))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "1"]


def test_pools_already_loaded_are_resized() -> None:
    import numpy  # noqa: F401 - loads OpenBLAS

    pools = limit_loaded_pools(1)
    assert pools and all(p["num_threads"] == 1 for p in pools)

"""Native thread pools of a worker: one thread each by default.

numpy's OpenBLAS and any OpenMP runtime start a pool of one thread per core at their first
use. A request's arrays are small (a few hundred candidates), so a pool cannot speed one up;
the service runs requests side by side in its workers and their threads instead, and with
every worker's pool as large as the machine the threads of all workers contend for the same
cores (issue 14: on 2 cores with 2 workers the uncached throughput ratio went 0.29-0.32 ->
0.38-0.39 with one thread each). ``RECSYS_SERVING_NATIVE_THREADS`` (default 1) sizes them.

:func:`size_native_threads` sets the variables the libraries read when they load
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``; a value set by the
operator is kept), so it must run before numpy is imported: ``serving/__init__.py`` calls it.
:func:`limit_loaded_pools` resizes pools already loaded (threadpoolctl), at worker start.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def native_threads() -> int:
    """Threads per native pool of one worker (``RECSYS_SERVING_NATIVE_THREADS``, default 1)."""
    return max(1, int(os.environ.get("RECSYS_SERVING_NATIVE_THREADS") or 1))


def size_native_threads() -> int:
    """Set the pools' variables for the libraries not loaded yet; returns the size."""
    threads = native_threads()
    for name in VARIABLES:
        os.environ.setdefault(name, str(threads))
    return threads


def limit_loaded_pools(threads: int | None = None) -> list[dict]:
    """Resize the pools already loaded in this process; returns threadpoolctl's view of them."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=threads or native_threads())
    pools = threadpool_info()
    logger.info("native thread pools: %s",
                ", ".join(f"{p['internal_api']}={p['num_threads']}" for p in pools) or "none")
    return pools

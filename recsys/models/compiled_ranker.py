"""The ranker compiled to native code with lleaves, cached on disk per model and CPU.

LightGBM's ``Booster.predict`` spends most of a 200-row call in its Python and C API
wrappers; lleaves compiles the same trees with LLVM into a function that returns the same
scores (checked at load on a probe matrix) about six times faster on this request path
(``benchmarks/ranker_predict.py`` measures it). Compiling takes about a second per 30
trees, so the object file is cached under the data directory, keyed by the model text
and the host CPU, and shared by the service's workers (a file lock lets one compile).
When lleaves is missing or compilation fails the service keeps LightGBM's own predict.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import logging
import platform
from pathlib import Path

import lightgbm as lgb
import numpy as np

logger = logging.getLogger(__name__)


class CompiledRanker:
    """``predict(X)`` of a LightGBM booster through an lleaves-compiled object file.

    Parameters
    ----------
    booster
        The trained LambdaRank booster.
    cache_dir
        Where compiled object files are kept (created when missing).
    """

    def __init__(self, booster: lgb.Booster, cache_dir: Path):
        import lleaves  # optional at import time of the service; see module docstring

        text = booster.model_to_string()
        key = hashlib.sha256(f"{text}\n{platform.machine()}\n{_cpu_name()}".encode()).hexdigest()
        cache_dir.mkdir(parents=True, exist_ok=True)
        model_file = cache_dir / f"{key[:24]}.txt"
        object_file = cache_dir / f"{key[:24]}.o"
        with open(cache_dir / f"{key[:24]}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker compiles, the others load its file
            if not model_file.exists():
                model_file.write_text(text)
            self._model = lleaves.Model(model_file=str(model_file))
            self._model.compile(cache=str(object_file))
        self.num_features = booster.num_feature()
        # The compiled function itself, called with the arrays' addresses and the GIL held:
        # lleaves' own predict costs about 20 us of Python around a 200-row call, and its
        # ctypes function releases the GIL, which a busy worker's other threads then keep
        # for up to the switch interval (5 ms) before the request gets it back.
        address = ctypes.cast(self._model._c_entry_func, ctypes.c_void_p).value
        self._entry = _ENTRY(address)
        _check_equal(booster, self)
        logger.info("ranker compiled with lleaves (%s)", object_file.name)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Raw scores of the rows of ``X`` (converted to the float64 lleaves reads)."""
        if X.ndim != 2 or X.shape[1] != self.num_features:
            raise ValueError(f"X must be (n, {self.num_features}), is {X.shape}")
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.zeros(len(X), dtype=np.float64)
        if len(X):
            self._entry(X.ctypes.data, out.ctypes.data, 0, len(X))
        return out


#: lleaves' entry point ``void f(double *X, double *out, int32 start, int32 end)``, taking
#: addresses and keeping the GIL (PYFUNCTYPE).
_ENTRY = ctypes.PYFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                           ctypes.c_int32)


def compile_ranker(booster: lgb.Booster, cache_dir: Path) -> CompiledRanker | None:
    """A :class:`CompiledRanker`, or None (logged) when it cannot be built here."""
    try:
        return CompiledRanker(booster, cache_dir)
    except Exception as exc:  # any failure keeps LightGBM's own, slower predict
        logger.warning("ranker not compiled, using LightGBM predict: %s", exc)
        return None


def _check_equal(booster: lgb.Booster, compiled: CompiledRanker) -> None:
    """Raise when the compiled model disagrees with LightGBM on a random probe matrix."""
    rng = np.random.default_rng(0)
    probe = rng.normal(size=(64, booster.num_feature())) * 10
    probe[rng.random(probe.shape) < 0.1] = np.nan
    expected = booster.predict(probe, num_threads=1)
    got = compiled.predict(probe)
    if not np.allclose(expected, got, rtol=1e-5, atol=1e-6):
        raise ValueError(f"compiled ranker differs from LightGBM by "
                         f"{np.max(np.abs(expected - got)):.3g}")


def _cpu_name() -> str:
    """The host CPU model: lleaves compiles for the CPU it runs on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()

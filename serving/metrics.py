"""Prometheus metrics of the request path, exported on BentoML's ``/metrics``.

Defined with ``bentoml.metrics`` so they work in BentoML's multi-process workers.
"""

from __future__ import annotations

import os
import random
import time
from functools import lru_cache

import bentoml

_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
            0.5, 1.0, 2.5)

REQUEST_SECONDS = bentoml.metrics.Histogram(
    name="recsys_recommend_seconds",
    documentation="Time to answer a recommendation request, by how it was answered.",
    labelnames=["outcome"],  # cached, ranked, fallback
    buckets=_BUCKETS,
)
STAGE_SECONDS = bentoml.metrics.Histogram(
    name="recsys_stage_seconds",
    documentation="Time spent in each stage of the request path.",
    labelnames=["stage"],
    buckets=_BUCKETS,
)
CACHE = bentoml.metrics.Counter(
    name="recsys_cache_requests",
    documentation="Response cache lookups by result (hit, miss).",
    labelnames=["result"],
)
CACHE_WRITES_DROPPED = bentoml.metrics.Counter(
    name="recsys_cache_writes_dropped",
    documentation="Queued response-cache writes dropped (oldest first) because Redis could "
    "not keep up.",
)
FALLBACKS = bentoml.metrics.Counter(
    name="recsys_fallbacks",
    documentation="Responses that fell back to popular items, by reason.",
    labelnames=["reason"],
)
EXPERIMENT_REQUESTS = bentoml.metrics.Counter(
    name="recsys_experiment_requests",
    documentation="Requests of A/B experiments by arm (the MLflow alias that served them).",
    labelnames=["experiment", "variant"],
)
MODEL_VERSION = bentoml.metrics.Gauge(
    name="recsys_model_version",
    documentation="1 for the MLflow model version this worker serves.",
    labelnames=["version"],
    multiprocess_mode="livemax",
)
MODEL_SWAPS = bentoml.metrics.Counter(
    name="recsys_model_reloads",
    documentation="Models or item tables swapped in without a restart, by cause.",
    labelnames=["cause"],  # champion, materialization
)
MODEL_REJECTED = bentoml.metrics.Counter(
    name="recsys_model_rejections",
    documentation="Models not swapped in, by reason: a champion that failed its smoke test, "
    "an experiment arm that failed to load.",
    labelnames=["reason"],
)
EVENTS = bentoml.metrics.Counter(
    name="recsys_events",
    documentation="Accepted events by what happened to them online: pushed, duplicate (an "
    "event_id pushed before), queued (for replay: Redis unreachable), replayed.",
    labelnames=["outcome"],
)
IMPRESSIONS = bentoml.metrics.Counter(
    name="recsys_impressions",
    documentation="Served lists handed to the impression path by what happened to them: "
    "logged (local profile), streamed, queued (for replay: the stream unreachable), replayed.",
    labelnames=["outcome"],
)
EVENT_TYPES = bentoml.metrics.Counter(
    name="recsys_events_accepted",
    documentation="Events accepted (logged durably) by event type.",
    labelnames=["event_type"],
)


#: Share of stage timings observed into ``recsys_stage_seconds`` (``RECSYS_SERVING_STAGE_SAMPLE``):
#: an observation writes the multiprocess files (3-4 us; a request has nine stages), and a
#: sample keeps the per-stage means and quantiles while the request path pays a tenth of it.
STAGE_SAMPLE = float(os.environ.get("RECSYS_SERVING_STAGE_SAMPLE", "0.1"))


class _Stage:
    """The context manager :func:`stage` returns (a class: cheaper than a generator)."""

    __slots__ = ("name", "start", "timings")

    def __init__(self, name: str, timings: dict[str, float]):
        self.name, self.timings = name, timings

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        self.timings[self.name] = elapsed * 1000
        if random.random() < STAGE_SAMPLE:
            _stage_series(self.name).observe(elapsed)


@lru_cache(maxsize=64)
def _stage_series(name: str) -> object:
    return STAGE_SECONDS.labels(stage=name)


def stage(name: str, timings: dict[str, float]) -> _Stage:
    """Time a stage into ``timings`` (milliseconds, always) and, for a sample of
    :data:`STAGE_SAMPLE` of the calls, the stage histogram."""
    return _Stage(name, timings)


def serving_version(version: str, previous: str | None = None) -> None:
    if previous is not None and previous != version:
        MODEL_VERSION.labels(version=previous).set(0)
    MODEL_VERSION.labels(version=version).set(1)

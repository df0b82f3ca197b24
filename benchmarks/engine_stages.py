"""CPU per request of the in-process engine (``Engine.recommend``) over the champion in .data,
per stage, and the response bodies it gives, to compare code versions on one world.

The engine is built as the service builds it (the champion from MLflow, the item table from
Feast's online store, the lleaves-compiled ranker); every known user and a few unknown ones
are asked in a fixed mix of request shapes (contexts, filters, diversity, a category cap,
``explain``). Timing is the thread's CPU time (``time.thread_time``, steadier than wall time
on a shared machine) per request, in repeats whose medians are printed with each stage's mean CPU
milliseconds (the engine's ``timings``, taken with the thread's CPU clock here instead of
the wall clock) and the load average. ``--dump FILE`` writes
the response bodies (without ``latency_ms``) as JSON lines instead, for ``--compare``.

Run from another checkout's folder (``PYTHONPATH=that/checkout``) to time that code on the
same data: ``RECSYS_DATA_DIR`` names the data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from serving.native_threads import size_native_threads

size_native_threads()  # one thread per native pool, as a worker has (before numpy loads)

from recsys.features.context import request_context  # noqa: E402
from recsys.platform.settings import get_settings  # noqa: E402

#: Request shapes, cycled over the users: (context, query fields).
SHAPES: list[tuple[dict[str, object], dict[str, object]]] = [
    ({}, {}),
    ({"device": "mobile"}, {}),
    ({"device": "desktop", "hour": 20, "weekday": 5}, {}),
    ({"hour": 7}, {"n": 20}),
    ({"device": "tv"}, {"diversity": 0.3}),
    ({}, {"max_per_category": 2}),
    ({"device": "tablet", "hour": 13}, {"max_price": 30.0}),
    ({}, {"explain": True, "n": 5}),
]
#: A fixed moment for requests without a timestamp: the bodies do not follow the clock.
MOMENT = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)


@contextmanager
def cpu_stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """:func:`serving.metrics.stage` on the thread's CPU clock (milliseconds into
    ``timings``), without the metric: on a shared machine wall time follows the neighbours."""
    start = time.thread_time()
    yield
    timings[name] = (time.thread_time() - start) * 1000


def build_engine():  # noqa: ANN201 (serving.engine.Engine; imported late, see main)
    """The champion's engine, as :class:`serving.model_store.ModelHolder` builds it."""
    import mlflow
    from mlflow import MlflowClient

    import serving.engine
    from recsys.features.item_table import ItemTable, item_views_materialized_at
    from recsys.features.names import RANKER_SERVICE
    from recsys.features.store import get_feature_store
    from recsys.models.registry import CHAMPION, alias_version, load_recommender
    from serving.engine import Engine

    serving.engine.stage = cpu_stage  # type: ignore[assignment]
    settings = get_settings()
    version = str(alias_version(MlflowClient(tracking_uri=settings.tracking_uri),
                                settings.model_name, CHAMPION).version)
    mlflow.set_tracking_uri(settings.tracking_uri)
    recommender = load_recommender(f"models:/{settings.model_name}/{version}")
    store = get_feature_store(settings)
    service = str(recommender.manifest.get("feature_service", RANKER_SERVICE))
    items = ItemTable.load(store, recommender.catalog, recommender.item_vectors(), service,
                           item_views_materialized_at(store, service))
    return Engine(recommender=recommender, store=store, model_version=version, items=items,
                  compiled_dir=settings.data_dir / "serving" / "compiled")


def queries(engine, users: int) -> list:  # noqa: ANN001
    """The benchmark's queries: ``users`` known users (all when 0) and 5 unknown ones."""
    from serving.engine import Query

    known = [str(u) for u in
             engine.recommender.candidates.generators[0].interactions.user_ids.tolist()]
    known = known[:users] if users else known
    categories = sorted({c for cats in engine.items.categories for c in cats})
    out = []
    for i, user in enumerate([*known, *(f"unknown-{k}" for k in range(5))]):
        context, fields = SHAPES[i % len(SHAPES)]
        if i % 11 == 10 and categories:
            fields = {**fields, "categories": frozenset(categories[i % len(categories):][:2])}
        moment = request_context(context, now=MOMENT)
        out.append(Query(user_id=user, context=tuple(moment.items()), **fields))
    return out


def read_features(engine, batch: list) -> list:  # noqa: ANN001
    """Each query's user row as the online store's reply (the service reads it in its cache
    look-up's round trip and passes it on: the engine's ``user_features`` stage decodes)."""
    reader = engine.user_reader
    return [reader.client.hmget(*reader.hash_read(q.user_id)) for q in batch]


def dump(engine, batch: list, rows: list, path: str) -> None:  # noqa: ANN001
    with open(path, "w") as out:
        for query, features in zip(batch, rows, strict=True):
            body = engine.recommend(query, features=features).model_dump(
                mode="json", exclude={"latency_ms"})
            out.write(json.dumps(body, sort_keys=True) + "\n")


def compare(first: str, second: str) -> int:
    """Print how many bodies differ (and the first difference); 1 when any does."""
    with open(first) as a, open(second) as b:
        pairs = list(zip(a, b, strict=True))
    differ = [(x, y) for x, y in pairs if json.loads(x) != json.loads(y)]
    print(json.dumps({"bodies": len(pairs), "differ": len(differ)}))
    if differ:
        print(differ[0][0][:2000], differ[0][1][:2000], sep="\n", file=sys.stderr)
    return 1 if differ else 0


def timed(engine, batch: list, rows: list, repeats: int) -> dict[str, object]:  # noqa: ANN001
    """Medians over ``repeats`` of the CPU ms per request and of each stage's mean ms."""
    cpu, stages = [], {}
    for _ in range(repeats):
        sums: dict[str, float] = {}
        start = time.thread_time()
        for query, features in zip(batch, rows, strict=True):
            timings: dict[str, float] = {}
            engine.recommend(query, timings, features)
            for name, value in timings.items():
                sums[name] = sums.get(name, 0.0) + value
        cpu.append((time.thread_time() - start) * 1000 / len(batch))
        for name, value in sums.items():
            stages.setdefault(name, []).append(value / len(batch))
    return {"cpu_ms_per_request": round(statistics.median(cpu), 4),
            "cpu_ms_runs": [round(c, 4) for c in cpu],
            "stage_ms": {k: round(statistics.median(v), 4) for k, v in stages.items()},
            "requests": len(batch), "loadavg": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=0, help="known users asked (0: all)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dump", help="write the response bodies here instead of timing")
    parser.add_argument("--compare", nargs=2, metavar="FILE", help="compare two dumps")
    parser.add_argument("--label", default="", help="a name printed with the figures")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    os.environ.setdefault("RECSYS_SERVING_STAGE_SAMPLE", "0")
    engine = build_engine()
    batch = queries(engine, args.users)
    rows = read_features(engine, batch)
    for query, features in zip(batch[:50], rows, strict=False):  # warm-up
        engine.recommend(query, features=features)
    if args.dump:
        dump(engine, batch, rows, args.dump)
        return 0
    print(json.dumps({"label": args.label, **timed(engine, batch, rows, args.repeats)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Events files of the shapes users bring, generated from the synthetic world.

:func:`write_events_folder` writes ``events.csv`` (and, on request, ``items.csv`` and
``users.csv``) with ids that look like numbers, one event type or the world's funnel, spread
over any number of years: what the importers, the pipeline and the evaluation must take
as they come (tests and ``benchmarks.import_events``).

From the command line it writes a world of any size (the scale world's view sampler, without
a users x items matrix, takes over above :attr:`~recsys.events.synthetic.WorldConfig.
dense_pairs`), e.g. the evaluation's scale world::

    python -m recsys.events.sample_files --users 100000 --items 50000 --events 1000000 \\
        --days 60 --event-types many --out .data/scale-world
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.events.synthetic import WorldConfig, generate_world


@dataclass(frozen=True)
class FileShape:
    """What the generated folder holds.

    ``n_events`` events of ``n_users`` users on ``n_items`` items over ``years`` years ending
    at ``end``; ``event_types`` "one" (every event a ``rate`` with its value) or "many" (the
    world's views, clicks, carts, purchases and ratings); ``catalog`` / ``users`` write
    ``items.csv`` / ``users.csv``.
    """

    n_events: int = 10_000
    n_users: int = 400
    n_items: int = 600
    years: float = 10.0
    #: The window in days instead of ``years`` (when set).
    days: int | None = None
    event_types: str = "one"
    catalog: bool = False
    users: bool = False
    end: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    seed: int = 0


def _numeric(ids: pd.Series, offset: int) -> pd.Series:
    """``u12`` / ``i7`` → ``10012`` / ``20007``: ids that a reader would take for numbers."""
    return (ids.str.extract(r"(\d+)$")[0].astype(int) + offset).astype(str)


def write_events_folder(folder: Path, shape: FileShape | None = None) -> Path:
    """Write the folder of ``shape`` (see :class:`FileShape`); returns ``folder``."""
    shape = shape or FileShape()
    days = shape.days or int(shape.years * 365)
    # A session holds ~4 views and ~2 later funnel events: a few more sessions than the
    # events need, the surplus sampled away below.
    per_session = 2.0 if shape.event_types == "one" else 5.0
    world = generate_world(WorldConfig(
        n_users=shape.n_users, n_items=shape.n_items, days=days, end=shape.end,
        seed=shape.seed,
        sessions_per_user=max(1.0, shape.n_events / shape.n_users / per_session),
    ))
    events = world.events
    if shape.event_types == "one":
        events = events[events["event_type"] != "view"]
    rng = np.random.default_rng(shape.seed)
    keep = np.sort(rng.choice(len(events), min(shape.n_events, len(events)), replace=False))
    events = events.iloc[keep]
    out = pd.DataFrame({
        "user_id": _numeric(events["user_id"], 10_000).to_numpy(),
        "item_id": _numeric(events["item_id"], 20_000).to_numpy(),
        "timestamp": (events["timestamp"].astype("int64") // 10**9).to_numpy(),
    })
    if shape.event_types == "one":
        # One type: every interaction a rating, higher down the funnel.
        stars = {"click": 3.0, "add_to_cart": 4.0, "purchase": 5.0, "watchlist_add": 3.0}
        value = events["value"].where(events["event_type"] == "rate",
                                      events["event_type"].map(stars).fillna(3.0))
        out["event_type"] = "rate"
        out["value"] = value.clip(1.0, 5.0).to_numpy()
    else:
        out["event_type"] = events["event_type"].to_numpy()
        out["value"] = events["value"].to_numpy()
    folder.mkdir(parents=True, exist_ok=True)
    out.to_csv(folder / "events.csv", index=False)
    if shape.catalog:
        items = world.items.assign(
            item_id=_numeric(world.items["item_id"], 20_000),
            categories=world.items["categories"].map("|".join),
        )
        items.drop(columns=["created_at"]).to_csv(folder / "items.csv", index=False)
    if shape.users:
        users = world.users.assign(user_id=_numeric(world.users["user_id"], 10_000))
        users.to_csv(folder / "users.csv", index=False)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.events.sample_files",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write events.csv in")
    parser.add_argument("--users", type=int, default=FileShape.n_users)
    parser.add_argument("--items", type=int, default=FileShape.n_items)
    parser.add_argument("--events", type=int, default=FileShape.n_events,
                        help="events kept (a uniform sample of the world's)")
    parser.add_argument("--days", type=int, default=None,
                        help="length of the window (default: --years)")
    parser.add_argument("--years", type=float, default=FileShape.years)
    parser.add_argument("--event-types", choices=("one", "many"), default=FileShape.event_types,
                        help="one: every event a rating; many: the world's funnel")
    parser.add_argument("--catalog", action="store_true", help="also write items.csv")
    parser.add_argument("--user-table", action="store_true", help="also write users.csv")
    parser.add_argument("--seed", type=int, default=FileShape.seed)
    args = parser.parse_args(argv)
    shape = FileShape(n_events=args.events, n_users=args.users, n_items=args.items,
                      years=args.years, days=args.days, event_types=args.event_types,
                      catalog=args.catalog, users=args.user_table, seed=args.seed)
    folder = write_events_folder(args.out, shape)
    print(folder / "events.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())

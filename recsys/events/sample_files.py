"""Events files of the shapes users bring, generated from the synthetic world.

:func:`write_events_folder` writes ``events.csv`` (and, on request, ``items.csv`` and
``users.csv``) with ids that look like numbers, one event type or the world's funnel, spread
over any number of years: what the importers, the pipeline and the evaluation must take
as they come (tests and ``benchmarks.import_events``).
"""

from __future__ import annotations

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
    days = int(shape.years * 365)
    world = generate_world(WorldConfig(
        n_users=shape.n_users, n_items=shape.n_items, days=days, end=shape.end,
        seed=shape.seed, sessions_per_user=max(1.0, shape.n_events / shape.n_users / 2.0),
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

"""Where a batch import comes from: the seeded synthetic world, MovieLens or an events file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from recsys.events.importers import Dataset, load_dataset
from recsys.events.synthetic import WorldConfig, generate_world

SourceKind = Literal["synthetic", "movielens", "events"]


@dataclass(frozen=True)
class Source:
    """One import: ``kind``, the ``path`` of a MovieLens folder or events file, and the size
    and seed of a synthetic world."""

    kind: SourceKind = "synthetic"
    path: str | None = None
    n_users: int = 2000
    n_items: int = 1000
    days: int = 60
    seed: int = 42
    sessions_per_user: float = 8.0

    @property
    def label(self) -> str:
        """Name of the import's event log segment: the same source always gets the same label
        (re-importing it replaces its events), two different files never share one."""
        if self.kind == "synthetic":
            return f"synthetic-{self.seed}"
        where = str(Path(self.path or "").resolve())
        return f"{self.kind}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def load_source(source: Source) -> Dataset:
    """The events, catalog and users of ``source``; rows that failed validation in
    ``quarantined`` with their reason."""
    if source.kind == "synthetic":
        world = generate_world(WorldConfig(n_users=source.n_users, n_items=source.n_items,
                                           days=source.days, seed=source.seed,
                                           sessions_per_user=source.sessions_per_user))
        return Dataset(events=world.events, items=world.items, users=world.users,
                       quarantined=pd.DataFrame())
    if not source.path:
        raise ValueError(f"source kind {source.kind!r} needs a path")
    return load_dataset(source.path, fmt=source.kind)

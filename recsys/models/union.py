"""The first stage: several generators' lists merged into one candidate set per user.

The per-generator scores and ranks are the second-stage ranker's candidate features:
``<generator>_score`` (NaN when the generator did not retrieve the item) and
``<generator>_rank`` (1-based, ``n_per_generator + 1`` when absent). :func:`merge_lists` is
the one definition of that merge; :class:`UnionCandidates` applies it to batches of users
(training, evaluation) and :class:`~recsys.models.retrieval.CandidateRetriever` to one user on
the request path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
from feast import FeatureStore

from recsys.features.reads import historical_features
from recsys.models.generator import CandidateGenerator

GeneratorList = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One generator's list: keys (item ids or catalog rows), scores, 1-based ranks."""


def merge_lists(
    names: Sequence[str], lists: Sequence[GeneratorList | None], n_per_generator: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The union of the generators' lists and a score and rank column per generator.

    Parameters
    ----------
    names
        Generator names, one per entry of ``lists``.
    lists
        Each generator's list, None for a generator that retrieved nothing for this user.
    n_per_generator
        The list length asked of each generator; an absent item's rank is one more.

    Returns
    -------
    keys, columns
        The distinct keys, sorted, and ``<name>_score`` (float64, NaN when absent) and
        ``<name>_rank`` (float64) aligned with them.
    """
    found = [entry for entry in lists if entry is not None]
    if not found:
        return np.empty(0, np.int64), {}
    keys = np.unique(np.concatenate([entry[0] for entry in found]))
    columns: dict[str, np.ndarray] = {}
    for name, entry in zip(names, lists, strict=True):
        score = np.full(len(keys), np.nan, dtype=np.float64)
        rank = np.full(len(keys), n_per_generator + 1, dtype=np.float64)
        if entry is not None:
            at = np.searchsorted(keys, entry[0])
            score[at] = entry[1]
            rank[at] = entry[2]
        columns[f"{name}_score"] = score
        columns[f"{name}_rank"] = rank
    return keys, columns


class UnionCandidates:
    """Merged candidates of several generators, with per-source features.

    Parameters
    ----------
    generators
        Generators with unique ``name``; fitted here by :meth:`fit` or beforehand.
    n_per_generator
        List length asked of each generator.
    """

    def __init__(self, generators: Sequence[CandidateGenerator], n_per_generator: int):
        names = [g.name for g in generators]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"generator names must be unique and non-empty, got {names}")
        if n_per_generator < 1:
            raise ValueError(f"n_per_generator must be positive, got {n_per_generator}")
        self.generators = list(generators)
        self.n_per_generator = n_per_generator

    @property
    def names(self) -> list[str]:
        return [g.name for g in self.generators]

    def generator(self, name: str) -> CandidateGenerator:
        """The generator called ``name``."""
        for generator in self.generators:
            if generator.name == name:
                return generator
        raise KeyError(name)

    def fit(self, interactions: pd.DataFrame) -> Self:
        """Fit every generator on the same interactions; returns ``self``."""
        for generator in self.generators:
            generator.fit(interactions)
        return self

    def candidates(self, user_ids: Sequence[str], exclude_seen: bool = True) -> pd.DataFrame:
        """One row per distinct (user, candidate item) across the generators.

        Returns
        -------
        pandas.DataFrame
            ``user_id``, ``item_id`` and, per generator, ``<name>_score`` and
            ``<name>_rank`` (int) as :func:`merge_lists` defines them. Rows are sorted by
            user, then by the best rank over generators, then by item id.
        """
        users = np.asarray(sorted(set(map(str, user_ids))), dtype=object)
        n, names = self.n_per_generator, self.names
        catalog = np.unique(np.concatenate([g.interactions.item_ids for g in self.generators]))
        found = [self._found(g, users, catalog, exclude_seen) for g in self.generators]
        user_pos = np.concatenate([f[0] for f in found])
        item_code = np.concatenate([f[1] for f in found])
        # one row per distinct (user, item): keys sort by user, then item id
        keys, row = np.unique(user_pos * len(catalog) + item_code, return_inverse=True)
        columns: dict[str, np.ndarray] = {}
        offset = 0
        for name, (pos, _, scores, ranks) in zip(names, found, strict=True):
            at = row[offset:offset + len(pos)]
            offset += len(pos)
            columns[f"{name}_score"] = np.full(len(keys), np.nan)
            columns[f"{name}_score"][at] = scores
            columns[f"{name}_rank"] = np.full(len(keys), n + 1, dtype=np.int64)
            columns[f"{name}_rank"][at] = ranks
        best = np.min([columns[f"{name}_rank"] for name in names], axis=0, initial=n + 1)
        key_user, key_item = np.divmod(keys, len(catalog))
        order = np.lexsort((key_item, best, key_user))
        frame: dict[str, object] = {"user_id": users[key_user[order]],
                                    "item_id": catalog[key_item[order]].astype(object)}
        for name in names:
            frame[f"{name}_score"] = columns[f"{name}_score"][order]
            frame[f"{name}_rank"] = columns[f"{name}_rank"][order]
        return pd.DataFrame(frame)

    def _found(self, generator: CandidateGenerator, users: np.ndarray, catalog: np.ndarray,
               exclude_seen: bool) -> tuple[np.ndarray, ...]:
        """One generator's lists of ``users`` as flat arrays: user position, item code in
        ``catalog`` (sorted ids), score and 1-based rank of every listed item; batched top-n
        (:meth:`~recsys.models.generator.CandidateGenerator.top_of_rows`), as
        :meth:`~recsys.models.generator.CandidateGenerator.recommend` lists them."""
        matrix = generator.interactions
        rows = matrix.user_indices(users.tolist())
        known = np.flatnonzero(rows >= 0)
        code_of = np.searchsorted(catalog, matrix.item_ids)
        parts = []
        for chunk, cols, values in generator.top_of_rows(rows, self.n_per_generator,
                                                         exclude_seen):
            keep = values > -np.inf
            ranks = np.cumsum(keep, axis=1)
            pos = np.broadcast_to(known[chunk][:, None], keep.shape)
            parts.append((pos[keep], code_of[cols[keep]], values[keep].astype(np.float64),
                          ranks[keep]))
        if not parts:
            return tuple(np.empty(0, dtype) for dtype in (np.int64, np.int64, np.float64,
                                                          np.int64))
        return tuple(np.concatenate(column) for column in zip(*parts, strict=True))

    def featured_candidates(
        self, user_ids: Sequence[str], store: FeatureStore, as_of: pd.Timestamp, service: str
    ) -> pd.DataFrame:
        """:meth:`candidates` of ``user_ids`` with the FeatureService's features as known at
        ``as_of`` (Feast's point-in-time join)."""
        frame = self.candidates(user_ids)
        if frame.empty:
            return frame
        return historical_features(store, frame, as_of, service)

    def save(self, path: Path) -> None:
        """Write each generator into ``path/<name>`` and the layout into ``union.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for generator in self.generators:
            generator.save(path / generator.name)
        layout = {"n_per_generator": self.n_per_generator, "generators": self.names}
        (path / "union.json").write_text(json.dumps(layout, indent=2))

    @classmethod
    def load(cls, path: Path) -> UnionCandidates:
        """Read what :meth:`save` wrote."""
        path = Path(path)
        layout = json.loads((path / "union.json").read_text())
        generators = [CandidateGenerator.load(path / name) for name in layout["generators"]]
        return cls(generators, layout["n_per_generator"])

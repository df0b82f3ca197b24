"""Every known user's merged candidates computed in batch, packed to be stored with the user's
online features and read back in the request's one Redis round trip.

A list is what :meth:`~recsys.models.retrieval.CandidateRetriever.retrieve` gives the user
(the generators' lists merged by :func:`~recsys.models.union.merge_lists`, in catalog rows),
computed for many users at once through each generator's batched top-n
(:meth:`~recsys.models.generator.CandidateGenerator.top_of_rows`, the lists
:meth:`~recsys.models.generator.CandidateGenerator.recommend` gives offline). It is packed as
one little-endian block: ``int32`` catalog rows, then per generator ``float32`` scores (NaN
when absent) and ``uint16`` ranks. The request path's columns are float64 and the ranker reads
them as float32; scores are float32 from the generators, so the round trip is exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore

from recsys.features.names import CANDIDATE_BLOCK, CANDIDATES_MODEL, USER_CANDIDATES, short_name
from recsys.features.store import write_offline_parts
from recsys.models.generator import CandidateGenerator
from recsys.models.retrieval import Candidates
from recsys.models.union import GeneratorList, UnionCandidates, merge_lists

#: Users whose lists are computed together (each generator's top-n batches inside).
BATCH_USERS = 4_096


def encode_block(candidates: Candidates, names: Sequence[str]) -> bytes:
    """One user's candidates as bytes (``names``: the generators, in the union's order)."""
    parts = [candidates.rows.astype("<i4").tobytes()]
    for name in names:
        parts.append(candidates.columns[f"{name}_score"].astype("<f4").tobytes())
        parts.append(candidates.columns[f"{name}_rank"].astype("<u2").tobytes())
    return b"".join(parts)


def decode_block(block: bytes, names: Sequence[str]) -> Candidates:
    """The candidates :func:`encode_block` packed."""
    width = 4 + 6 * len(names)
    if len(block) % width:
        raise ValueError(f"a candidate block of {len(block)} bytes is not {width} per item")
    n = len(block) // width
    rows = np.frombuffer(block, "<i4", n).astype(np.int64)
    columns: dict[str, np.ndarray] = {}
    offset = 4 * n
    for name in names:
        columns[f"{name}_score"] = np.frombuffer(block, "<f4", n, offset).astype(np.float64)
        columns[f"{name}_rank"] = np.frombuffer(block, "<u2", n, offset + 4 * n).astype(
            np.float64)
        offset += 6 * n
    return Candidates(rows, columns)


def batch_lists(union: UnionCandidates, catalog_ids: Sequence[str], user_ids: Sequence[str],
                batch_users: int = BATCH_USERS) -> Iterator[tuple[str, Candidates]]:
    """``(user, candidates)`` of every user of ``user_ids`` some generator knows, in catalog
    rows of ``catalog_ids`` (items outside it dropped after ranking, as on the request path)."""
    index = {str(item): row for row, item in enumerate(catalog_ids)}
    maps = [np.fromiter((index.get(str(i), -1) for i in g.interactions.item_ids), np.int64,
                        len(g.interactions.item_ids)) for g in union.generators]
    n, names = union.n_per_generator, union.names
    for start in range(0, len(user_ids), batch_users):
        users = [str(u) for u in user_ids[start:start + batch_users]]
        per_generator = [_lists(g, to_row, users, n)
                         for g, to_row in zip(union.generators, maps, strict=True)]
        for k, user in enumerate(users):
            lists = [found[k] for found in per_generator]
            if any(entry is not None for entry in lists):
                rows, columns = merge_lists(names, lists, n)
                yield user, Candidates(rows, columns)


def store_lists(store: FeatureStore, union: UnionCandidates, catalog_ids: Sequence[str],
                user_ids: Sequence[str], model_version: str,
                batch_users: int = BATCH_USERS) -> int:
    """Compute the lists of ``user_ids`` and write them, stamped with ``model_version``, to
    the online store (Feast's ``write_to_online_store``, a batch at a time) and to the
    offline table of ``user_candidates`` (a batch at a time: a million users' lists take
    gigabytes); returns the users stored."""
    now = pd.Timestamp.now(tz="UTC")

    def written() -> Iterator[pd.DataFrame]:
        batch: list[tuple[str, bytes]] = []
        for user, candidates in batch_lists(union, catalog_ids, user_ids, batch_users):
            batch.append((user, encode_block(candidates, union.names)))
            if len(batch) == batch_users:
                yield _write(store, batch, model_version, now)
                batch = []
        if batch:
            yield _write(store, batch, model_version, now)

    _, stored = write_offline_parts(USER_CANDIDATES, written(), Path(store.repo_path))
    return stored


def _write(store: FeatureStore, batch: list[tuple[str, bytes]], model_version: str,
           now: pd.Timestamp) -> pd.DataFrame:
    frame = pd.DataFrame({
        "user_id": [user for user, _ in batch],
        "event_timestamp": now,
        short_name(CANDIDATES_MODEL): model_version,
        short_name(CANDIDATE_BLOCK): [block for _, block in batch],
    })
    store.write_to_online_store(USER_CANDIDATES, frame)
    return frame


def _lists(generator: CandidateGenerator, to_row: np.ndarray, users: list[str],
           n: int) -> list[GeneratorList | None]:
    """Each user's list of one generator in catalog rows (None for a user it never saw)."""
    rows = generator.interactions.user_indices(users)
    out: list[GeneratorList | None] = [None] * len(users)
    known = np.flatnonzero(rows >= 0)
    for chunk, cols, values in generator.top_of_rows(rows, n):
        for k, pos in enumerate(known[chunk].tolist()):
            keep = values[k] > -np.inf
            items, scores = to_row[cols[k][keep]], values[k][keep]
            ranks = np.arange(1, len(items) + 1)
            inside = items >= 0
            out[pos] = (items[inside], scores[inside], ranks[inside])
    return out

"""Every known user's merged candidates computed in batch, packed to be stored with the user's
online features and read back in the request's one Redis round trip.

A list is what :meth:`~recsys.models.retrieval.CandidateRetriever.retrieve` gives the user
(the generators' lists merged by :func:`~recsys.models.union.merge_lists`, in catalog rows),
computed for many users at once through each generator's batched top-n
(:meth:`~recsys.models.generator.CandidateGenerator.top_of_rows`, the lists
:meth:`~recsys.models.generator.CandidateGenerator.recommend` gives offline). It is packed as
one little-endian block (:func:`encode_block`): the catalog rows, then per generator only the
entries it holds (a merged list of ~330 rows has ~100 per generator), about 2 + 6 bytes per
entry instead of 4 + 6 per row and generator. The request path's columns are float64 and the
ranker reads them as float32; scores are float32 from the generators, so the round trip is
exact.
"""

from __future__ import annotations

import functools
import itertools
import struct
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


#: The first byte of a block: its layout's version.
BLOCK_VERSION = 2
_HEADER = struct.Struct("<BBHB")  # version, flags, rows, generators
_FIRST_ROW = struct.Struct("<i")
_ROW_STEPS = 1  # flag: rows as uint16 steps from the first (sorted and close, as merged)
_WIDE_CELLS = 2  # flag: cells as uint32 (generators x rows > 65,535)
_ORDINALS = np.arange(1, 4097, dtype=np.float64)


@functools.cache
def _generator_header(n_generators: int) -> struct.Struct:
    """Per generator: its entries, its absent rank, whether its ranks are 1..entries."""
    return struct.Struct("<" + "HHB" * n_generators)


def encode_block(candidates: Candidates, names: Sequence[str]) -> bytes:
    """One user's candidates as bytes (``names``: the generators, in the union's order).

    Most (row, generator) cells of a merged list are absent (NaN score and the absent rank),
    so only the present ones are stored, generator by generator in rank order: their cell
    (generator x rows + row) and float32 score (the generators' own precision), ranks only
    when they are not simply 1..entries. A few numpy calls decode it, whatever the size.
    """
    rows = np.asarray(candidates.rows, dtype=np.int64)
    n, g = len(rows), len(names)
    if n > 0xFFFF or g > 0xFF:
        raise ValueError(f"a candidate block holds at most 65,535 rows of 255 generators, "
                         f"got {n} of {g}")
    steps = np.diff(rows)
    stepped = n > 0 and 0 <= rows[0] <= 0x7FFFFFFF and bool(
        np.all((steps > 0) & (steps <= 0xFFFF)))
    wide = g * n > 0xFFFF
    meta, cells, scores, explicit = [], [], [], []
    for k, name in enumerate(names):
        score = candidates.columns[f"{name}_score"].astype("<f4")
        rank = candidates.columns[f"{name}_rank"]
        missing = np.isnan(score)
        absent_rank = int(rank[missing].max()) if missing.any() else 0
        present = np.flatnonzero(~(missing & (rank == absent_rank)))
        present = present[np.argsort(rank[present], kind="stable")]
        in_order = bool(np.array_equal(rank[present], _ordinals(len(present))))
        meta += [len(present), absent_rank, int(in_order)]
        cells.append(present + k * n)
        scores.append(score[present])
        if not in_order:
            explicit.append(rank[present].astype("<u2"))
    flags = (_ROW_STEPS if stepped else 0) | (_WIDE_CELLS if wide else 0)
    parts = [_HEADER.pack(BLOCK_VERSION, flags, n, g), _generator_header(g).pack(*meta)]
    if stepped:
        parts += [_FIRST_ROW.pack(int(rows[0])), steps.astype("<u2").tobytes()]
    else:
        parts.append(rows.astype("<i4").tobytes())
    parts += [np.concatenate([np.empty(0, np.int64), *cells]).astype(
                  "<u4" if wide else "<u2").tobytes(),
              np.concatenate([np.empty(0, "<f4"), *scores]).tobytes(),
              *(ranks.tobytes() for ranks in explicit)]
    return b"".join(parts)


def decode_block(block: bytes, names: Sequence[str]) -> Candidates:
    """The candidates :func:`encode_block` packed."""
    try:
        return _decode(block, names)
    except (ValueError, IndexError, struct.error) as exc:
        raise ValueError(f"a candidate block of {len(block)} bytes is not one of "
                         f"{len(names)} generators (layout {BLOCK_VERSION}): {exc}") from exc


def _decode(block: bytes, names: Sequence[str]) -> Candidates:
    version, flags, n, g = _HEADER.unpack_from(block)
    if version != BLOCK_VERSION or g != len(names):
        raise ValueError(f"layout {version} of {g} generators")
    header = _generator_header(g)
    meta = header.unpack_from(block, _HEADER.size)
    entries, absent_ranks, in_order = meta[0::3], meta[1::3], meta[2::3]
    offset = _HEADER.size + header.size
    if flags & _ROW_STEPS:
        rows = np.empty(n, dtype=np.int64)
        rows[0] = _FIRST_ROW.unpack_from(block, offset)[0]
        rows[1:] = np.frombuffer(block, "<u2", n - 1, offset + 4)
        rows.cumsum(out=rows)
        offset += 4 + 2 * (n - 1)
    else:
        rows = np.frombuffer(block, "<i4", n, offset).astype(np.int64)
        offset += 4 * n
    total = sum(entries)
    width = 4 if flags & _WIDE_CELLS else 2
    cells = np.frombuffer(block, "<u4" if width == 4 else "<u2", total, offset).astype(np.intp)
    offset += width * total
    # one table: every generator's scores (NaN: absent), then every generator's ranks
    table = np.empty((2 * g, n))
    table[:g] = np.nan
    table[g:] = np.array(absent_ranks, dtype=np.float64)[:, None]
    np.put(table, cells, np.frombuffer(block, "<f4", total, offset))
    offset += 4 * total
    # Ranks 1..k of each generator's entries at once: ordinals less each one's start.
    starts = list(itertools.accumulate(entries[:-1], initial=0))
    rank_values = _ordinals(total) - np.repeat(starts, entries)
    if not all(in_order):
        for start, count, ordered in zip(starts, entries, in_order, strict=True):
            if not ordered:
                rank_values[start:start + count] = np.frombuffer(block, "<u2", count, offset)
                offset += 2 * count
    np.put(table, cells + g * n, rank_values)
    if offset != len(block):
        raise ValueError(f"{len(block) - offset} bytes left over")
    return Candidates(rows, dict(zip(_column_names(tuple(names)), table, strict=True)), table)


@functools.cache
def _column_names(names: tuple[str, ...]) -> list[str]:
    """The decoded table's columns: each generator's score, then each one's rank."""
    return [f"{name}_score" for name in names] + [f"{name}_rank" for name in names]


def _ordinals(count: int) -> np.ndarray:
    """1.0, 2.0, ... count."""
    return _ORDINALS[:count] if count <= len(_ORDINALS) else np.arange(1.0, count + 1.0)


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

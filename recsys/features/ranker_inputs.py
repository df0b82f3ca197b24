"""The ranker's inputs: one definition of each feature for the batch frame and the request path.

The ranker reads, for each (user, item) candidate: every scalar feature of the Feast
FeatureService (full names, ``view__feature``), the candidate generators' scores and ranks,
each generator's score standardized within the list (``<generator>_score_z``:
:func:`list_zscores`, comparable across users whose raw scores differ in scale), and features
derived from Feast arrays: ``category_match`` (:func:`category_match`) and
``recent_sim_mean`` / ``recent_sim_max`` (:func:`recent_similarity`); the context of the list
(``context_hour``, ``context_weekday``, ``context_device``: :mod:`recsys.features.context`) and
the item's share of events in that part of the day and on that device (``daypart_share``,
``device_share``: :func:`context_shares`). Training builds them over a frame of many users'
lists (:func:`feature_matrix`; the context columns come with each list), the service over one
user's candidates and the request's context (:class:`OnlineInputs`); both call the same
functions, and the model stores the column order it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.features.context import CONTEXT_DEVICE, CONTEXT_FEATURES, CONTEXT_HOUR, daypart_of
from recsys.features.item_table import ItemTable
from recsys.features.names import (
    AFFINITY,
    CATEGORY_IDS,
    DAYPART_SHARES,
    DEVICE_SHARES,
    RECENT_ITEMS,
)

KEYS = ("user_id", "item_id", "event_timestamp", "list_id")
CONTEXT_DERIVED = ("daypart_share", "device_share")
DERIVED = ("category_match", "recent_sim_mean", "recent_sim_max", *CONTEXT_DERIVED)
#: Suffix of a generator score standardized within its list (:func:`list_zscores`).
ZSCORE = "_score_z"


def list_zscores(scores: np.ndarray) -> np.ndarray:
    """One list's scores of one generator minus their mean, over their standard deviation.

    NaN (the generator did not retrieve the candidate) stays NaN and is left out of the
    mean and deviation; a list with fewer than two scores, or equal ones, gives 0. A 2-D
    ``scores`` holds one generator per column, standardized each on its own (one pass over
    all of them: the request path's generators at once).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        return generator_zscores(scores[None, :])[0]
    return generator_zscores(np.ascontiguousarray(scores.T)).T


def generator_zscores(table: np.ndarray) -> np.ndarray:
    """:func:`list_zscores` of a ``(generators, candidates)`` float64 table, one generator
    per row (float32, the same layout): each reduction runs along a contiguous row, several
    times faster than down the columns of the transposed table."""
    table = np.asarray(table, dtype=np.float64)
    known = table == table  # not NaN
    count = np.maximum(np.add.reduce(known, axis=1), 1)[:, None]
    filled = np.where(known, table, 0.0)
    centred = np.where(known, table - np.add.reduce(filled, axis=1)[:, None] / count, 0.0)
    spread = np.sqrt(np.add.reduce(centred * centred, axis=1)[:, None] / count)
    # equal scores (no spread) give 0: x / inf
    out = np.where(known, centred / np.where(spread > 0, spread, np.inf), np.nan)
    return out.astype(np.float32)


def context_shares(hour: np.ndarray, device: np.ndarray, dayparts: np.ndarray,
                   devices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's share of events in the list's part of the day and on its device.

    ``hour`` and ``device`` are the list's context (per candidate; NaN: unknown), ``dayparts``
    and ``devices`` the candidates' ``(n, 4)`` share columns (:data:`DAYPART_SHARES`,
    :data:`DEVICE_SHARES`); an unknown context or item gives NaN.
    """
    n = len(dayparts)
    out = []
    for index, shares in ((daypart_of(hour), dayparts), (device, devices)):
        index = np.nan_to_num(np.asarray(index, dtype=np.float64), nan=-1).astype(np.int64)
        value = np.full(n, np.nan, dtype=np.float32)
        ok = (index >= 0) & (index < shares.shape[1])
        value[ok] = shares[np.flatnonzero(ok), index[ok]]
        out.append(value)
    return out[0], out[1]


def category_match(affinity: object, onehot: np.ndarray,
                   counts: np.ndarray | None = None) -> np.ndarray:
    """Mean of one user's category ``affinity`` over each item's categories (0 when unknown).

    ``onehot`` is the candidates' ``(n, vocabulary)`` category membership; category indices
    beyond the user's affinity vector are ignored. ``counts`` are its row sums when the
    caller has them (used when the affinity covers the whole vocabulary).
    """
    out = np.zeros(len(onehot), dtype=np.float32)
    if affinity is None or len(affinity) == 0 or onehot.shape[1] == 0:  # type: ignore[arg-type]
        return out
    aff = np.asarray(affinity, dtype=np.float32)
    width = min(len(aff), onehot.shape[1])
    member = onehot[:, :width]
    if counts is None or width != onehot.shape[1]:
        counts = np.add.reduce(member, axis=1)
    return np.divide(member @ aff[:width], counts, out=out, where=counts > 0)


def recent_similarity(
    vectors: np.ndarray, has_vector: np.ndarray, rows: np.ndarray, history: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max cosine similarity of each candidate to the user's recent items.

    ``vectors`` are unit-norm item embeddings (ALS item factors) with ``has_vector`` marking
    the real ones; ``rows`` index the candidates and ``history`` the recent items into them
    (-1 for an item without a row). Items without an embedding contribute nothing, a recent
    item equal to the candidate is skipped, and a candidate with nothing left gets 0.
    """
    mean = np.zeros(len(rows), dtype=np.float32)
    best = np.zeros(len(rows), dtype=np.float32)
    history = history[history >= 0]
    history = history[has_vector[history]]
    if history.size == 0 or len(rows) == 0:
        return mean, best
    # take: a row gather several times faster than fancy indexing, the same values
    sims = vectors.take(rows, axis=0) @ vectors.take(history, axis=0).T
    same = rows[:, None] == history[None, :]
    ok = has_vector[rows]
    if np.logical_or.reduce(same, axis=None):
        count = len(history) - np.count_nonzero(same, axis=1)
        ok &= count > 0
        sums = np.where(same, 0.0, sims).sum(axis=1)
        sims = np.where(same, -np.inf, sims)
    else:  # the usual case (candidates exclude what the user saw): nothing to leave out
        count, sums = np.int64(len(history)), np.add.reduce(sims, axis=1)
    mean[ok] = (sums / count)[ok]
    # the largest of each row, down the columns of the transposed copy (the same values,
    # several times faster than along rows as short as the history)
    best[ok] = np.maximum.reduce(np.ascontiguousarray(sims.T), axis=0)[ok]
    return mean, best


def feature_matrix(
    frame: pd.DataFrame, item_vectors: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Numeric ranker inputs of many users' candidates joined with their Feast features.

    Parameters
    ----------
    frame
        One row per candidate: ``user_id``, ``item_id``, candidate columns
        (``<generator>_score`` / ``_rank``) and the FeatureService's columns (full names).
    item_vectors
        Unit-norm item embeddings for the recent-items similarity features.
    """
    numeric = frame.drop(columns=[c for c in KEYS if c in frame.columns])
    numeric = numeric.select_dtypes(include=["number", "bool"]).astype(np.float32)
    lists = "list_id" if "list_id" in frame else "user_id"
    for column in [c for c in frame.columns if c.endswith("_score")]:
        # list_zscores over every list at once (the same values, vectorized)
        scores = frame[column].astype(np.float64)
        centred = scores - scores.groupby(frame[lists], sort=False).transform("mean")
        spread = np.sqrt((centred ** 2).groupby(frame[lists], sort=False).transform("mean"))
        z = (centred / spread.where(spread > 0)).to_numpy()
        z[(spread.to_numpy() == 0) & scores.notna().to_numpy()] = 0.0
        numeric[column.removesuffix("_score") + ZSCORE] = z.astype(np.float32)
    if CONTEXT_HOUR in frame and all(c in frame for c in DAYPART_SHARES + DEVICE_SHARES):
        numeric["daypart_share"], numeric["device_share"] = context_shares(
            frame[CONTEXT_HOUR].to_numpy(np.float64), frame[CONTEXT_DEVICE].to_numpy(np.float64),
            frame[list(DAYPART_SHARES)].to_numpy(np.float32),
            frame[list(DEVICE_SHARES)].to_numpy(np.float32))
    with_category = AFFINITY in frame and CATEGORY_IDS in frame
    if not with_category and RECENT_ITEMS not in frame:
        return numeric
    match = np.zeros(len(frame), dtype=np.float32)
    sim_mean = np.zeros(len(frame), dtype=np.float32)
    sim_max = np.zeros(len(frame), dtype=np.float32)
    item_code, item_ids = pd.factorize(frame["item_id"])
    onehot = _category_onehot(frame, item_code, len(item_ids)) if with_category else None
    ids = list(item_vectors or {})
    position = {item: i for i, item in enumerate(ids)}
    vectors = np.zeros((len(ids) + 1, _dim(item_vectors)), dtype=np.float32)  # last: none
    if ids:
        vectors[:-1] = np.stack([np.asarray(item_vectors[i], dtype=np.float32) for i in ids])
    has_vector = np.r_[np.ones(len(ids), bool), False]
    vector_row = np.fromiter((position.get(i, len(ids)) for i in item_ids), np.int64,
                             len(item_ids))
    for rows in frame.groupby(lists, sort=False).indices.values():
        first = rows[0]
        if onehot is not None:
            match[rows] = category_match(frame[AFFINITY].iat[first], onehot[item_code[rows]])
        if RECENT_ITEMS in frame and ids:
            recent = frame[RECENT_ITEMS].iat[first]
            history = np.fromiter((position.get(h, -1) for h in recent), np.int64,
                                  len(recent)) if recent is not None else np.empty(0, np.int64)
            sim_mean[rows], sim_max[rows] = recent_similarity(
                vectors, has_vector, vector_row[item_code[rows]], history)
    if with_category:
        numeric["category_match"] = match
    if RECENT_ITEMS in frame:
        numeric["recent_sim_mean"] = sim_mean
        numeric["recent_sim_max"] = sim_max
    return numeric


def _dim(item_vectors: dict[str, np.ndarray] | None) -> int:
    return len(next(iter(item_vectors.values()))) if item_vectors else 0


def _category_onehot(frame: pd.DataFrame, item_code: np.ndarray, n_items: int) -> np.ndarray:
    """``(n_items, vocabulary)`` category membership of the frame's distinct items."""
    first = np.unique(item_code, return_index=True)[1]
    cats = [frame[CATEGORY_IDS].iat[i] for i in first]
    width = 1 + max((int(max(c)) for c in cats if c is not None and len(c)), default=-1)
    onehot = np.zeros((n_items, max(width, 0)), dtype=np.float32)
    for code, values in enumerate(cats):
        if values is not None and len(values):
            idx = np.asarray(values, dtype=np.int64)
            onehot[code, idx[idx >= 0]] = 1.0
    return onehot


class OnlineInputs:
    """The same columns as :func:`feature_matrix` for one user's candidates, from arrays.

    Item features are gathered from the in-process :class:`~recsys.features.item_table.ItemTable`
    (read from Feast's online store) as rows of one block laid out in the ranker's column order
    ``features``, candidate columns copied, the user's scalar features and the context broadcast
    and the derived ones computed by the functions above. Which column comes from where is
    planned once per set of candidate column names, so a request does a few array operations
    and no per-feature lookups.
    """

    def __init__(self, features: list[str], items: ItemTable):
        self.features, self.items = list(features), items
        item_index = {name: j for j, name in enumerate(items.feature_names)}
        self._item_dst = np.array([j for j, f in enumerate(features) if f in item_index],
                                  dtype=np.int64)
        self._item_src = np.array([item_index[f] for f in features if f in item_index],
                                  dtype=np.int64)
        self._zscores = [(j, f.removesuffix(ZSCORE) + "_score") for j, f in enumerate(features)
                         if f.endswith(ZSCORE)]
        self._other = [(j, f) for j, f in enumerate(features)
                       if f not in item_index and f not in DERIVED and f not in CONTEXT_FEATURES
                       and not f.endswith(ZSCORE)]
        self._context = [(j, f) for j, f in enumerate(features) if f in CONTEXT_FEATURES]
        self._context_dst = np.array([j for j, _ in self._context], dtype=np.int64)
        self._derived = {f: j for j, f in enumerate(features) if f in DERIVED}
        shares = DAYPART_SHARES + DEVICE_SHARES
        self._shares = (np.array([item_index[f] for f in shares], dtype=np.int64)
                        if all(f in item_index for f in shares) else None)
        # the share columns' indices into the item features, as one float32 row
        self._share_columns = (None if self._shares is None
                               else self._shares[None, :].astype(np.float32))
        self._share_picks: dict[tuple[float | None, float | None], tuple[float, float]] = {}
        self._plans: dict[tuple[str, ...], _Plan] = {}
        # Every item's row of the ranker's inputs, item features in place and NaN elsewhere,
        # built once per item table: a request's matrix starts as one gather of its rows.
        self._block = np.full((len(items), len(self.features)), np.nan, dtype=np.float32)
        self._category_totals = items.category_counts.sum(axis=1)  # categories per item
        if self._item_dst.size:
            self._block[:, self._item_dst] = items.features[:, self._item_src]

    def matrix(self, rows: np.ndarray, columns: Mapping[str, np.ndarray],
               user: Mapping[str, object],
               context: Mapping[str, float] | None = None,
               table: np.ndarray | None = None,
               recent_rows: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), n_features)`` float32 inputs of the catalog ``rows`` with candidate
        ``columns`` for the user whose online features are ``user``, in the request's
        ``context`` (:func:`recsys.features.context.request_context`; None: unknown).
        ``table`` is the columns stacked in their order when the caller has them so
        (:attr:`recsys.models.retrieval.Candidates.table`), ``recent_rows`` the catalog rows
        of the user's recent items when it has them (-1: not in the catalog)."""
        items = self.items
        plan = self._plans.get(tuple(columns))
        if plan is None:
            plan = self._plans[tuple(columns)] = self._plan(columns)
        X = self._block.take(rows, axis=0)
        if plan.copied_dst.size or plan.zscore_dst.size:
            if table is None:
                table = np.stack(list(columns.values()))
            if plan.copied_dst.size:
                X[:, plan.copied_dst] = table[plan.copied_src].T
            if plan.zscore_dst.size:
                X[:, plan.zscore_dst] = generator_zscores(table[plan.zscore_src]).T
        if plan.user:
            X[:, plan.user_dst] = [_scalar(user.get(name)) for name in plan.user]
        context = context or {}
        if self._context:
            X[:, self._context_dst] = [context.get(name, np.nan) for _, name in self._context]
        derived = self._derived
        if self._shares is not None and ("daypart_share" in derived or "device_share" in derived):
            picked = self._share_pick(context)
            for name, column in zip(CONTEXT_DERIVED, picked, strict=True):
                if name in derived:
                    X[:, derived[name]] = (np.nan if column != column
                                           else items.features[rows, int(column)])
        if "category_match" in derived:
            X[:, derived["category_match"]] = category_match(
                user.get(AFFINITY), items.category_counts.take(rows, axis=0),
                self._category_totals[rows])
        if "recent_sim_mean" in derived or "recent_sim_max" in derived:
            if recent_rows is None:
                recent_rows = items.positions(list(user.get(RECENT_ITEMS) or []))  # type: ignore[call-overload]
            mean, best = recent_similarity(items.vectors, items.has_vector, rows, recent_rows)
            for name, values in (("recent_sim_mean", mean), ("recent_sim_max", best)):
                if name in derived:
                    X[:, derived[name]] = values
        return X

    def _plan(self, columns: Mapping[str, np.ndarray]) -> _Plan:
        """Where each non-item column of the inputs comes from, for candidates with
        ``columns``: copied from them, a user feature, or a standardized score."""
        position = {name: k for k, name in enumerate(columns)}
        copied = [(j, name) for j, name in self._other if name in columns]
        user = [(j, name) for j, name in self._other if name not in columns]
        zscored = [(j, name) for j, name in self._zscores if name in columns]
        return _Plan(copied_dst=np.array([j for j, _ in copied], dtype=np.int64),
                     copied_src=np.array([position[n] for _, n in copied], dtype=np.int64),
                     user=[name for _, name in user],
                     user_dst=np.array([j for j, _ in user], dtype=np.int64),
                     zscore_dst=np.array([j for j, _ in zscored], dtype=np.int64),
                     zscore_src=np.array([position[n] for _, n in zscored], dtype=np.int64))

    def _share_pick(self, context: Mapping[str, float]) -> tuple[float, float]:
        """The item feature columns of the context's daypart and device shares (NaN: none).

        :func:`context_shares` on one row of the share columns' indices names them; a
        context has few distinct values, so each is worked out once."""
        hour, device = context.get(CONTEXT_HOUR, np.nan), context.get(CONTEXT_DEVICE, np.nan)
        key = (None if hour != hour else hour, None if device != device else device)
        picked = self._share_picks.get(key)
        if picked is None:
            assert self._share_columns is not None
            day, dev = context_shares(
                np.array([hour]), np.array([device]),
                self._share_columns[:, :len(DAYPART_SHARES)],
                self._share_columns[:, len(DAYPART_SHARES):])
            picked = self._share_picks[key] = (float(day[0]), float(dev[0]))
        return picked


@dataclass(frozen=True)
class _Plan:
    """:meth:`OnlineInputs._plan`: the candidate columns copied and the scores standardized
    (positions in the inputs, ``_dst``, and in the candidates' columns, ``_src``), and the
    user's scalar features (names, positions)."""

    copied_dst: np.ndarray
    copied_src: np.ndarray
    user: list[str]
    user_dst: np.ndarray
    zscore_dst: np.ndarray
    zscore_src: np.ndarray


def _scalar(value: object) -> float:
    """A user feature as a number of the inputs (NaN unless it is an int or a float)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return np.nan

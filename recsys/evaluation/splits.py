"""Train/test splits of an interaction log.

Input frames follow the platform convention: ``user_id`` (str), ``item_id`` (str),
``timestamp`` (``datetime64[ns, UTC]``) and optionally ``weight`` (float). Every function
returns a :class:`Split` whose frames keep all input columns, in input row order, with a fresh
``RangeIndex``.

Rows of users or items that never occur in ``train`` are kept in ``test``; the evaluation
only ranks users known in training (a model cannot rank a user it has never seen), so such
rows are dropped there, not here.

The per-user splits share one rule for the number of training units of a user with ``n``
units: ``n_train = clip(floor((1 - test_fraction) * n), 1, n - 1)`` when ``n >= 2``, and
``n_train = 1`` when ``n == 1``. This matches Microsoft Recommenders
(``python_stratified_split`` / ``python_chrono_split`` keep the units whose rank / n is at most
``1 - test_fraction``) except for two deliberate differences: a single-unit user stays in
train instead of going to test, where they would be an unrankable cold user, and every user
with ``n >= 2`` keeps at least one unit on each side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["Split", "global_time_split", "stratified_split", "temporal_split"]

_EPS = 1e-9


@dataclass(frozen=True)
class Split:
    """A train/test pair of interaction frames.

    Attributes
    ----------
    train, test
        Disjoint subsets of the input rows.
    cutoff
        The time boundary of :func:`global_time_split` (test is at or after it); ``None`` for
        the per-user splits.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp | None = None


def _validate(df: pd.DataFrame, test_fraction: float, need_time: bool) -> None:
    required = ["user_id", "item_id"] + (["timestamp"] if need_time else [])
    missing = [col for col in required if col not in df.columns]
    if missing:
        raise ValueError(f"interactions lack columns {missing}")
    if df.empty:
        raise ValueError("interactions are empty")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if need_time and not isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype):
        raise TypeError(f"timestamp must be tz-aware datetime64, got {df['timestamp'].dtype}")
    for col in required:
        if df[col].isna().any():
            raise ValueError(f"column {col!r} has missing values")


def _units(df: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Unit code of every row (equal ``columns`` values form one unit) and each unit's first row."""
    codes = df.groupby(columns, sort=False).ngroup().to_numpy()
    first_rows = np.unique(codes, return_index=True)[1]
    return codes, first_rows


def _per_user_split(
    unit_users: np.ndarray, unit_order: np.ndarray, test_fraction: float
) -> np.ndarray:
    """Mark training units: per user, the first ``n_train`` units in ``unit_order``.

    Parameters
    ----------
    unit_users
        User code of each unit.
    unit_order
        Permutation of the units, sorted by user and then by the within-user order.
    test_fraction
        Share of each user's units that go to test.

    Returns
    -------
    numpy.ndarray
        Boolean mask over units, True for train.
    """
    sorted_users = unit_users[unit_order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, sorted_users.size])
    position = np.arange(sorted_users.size) - np.repeat(starts, counts)
    n_train = np.floor((1.0 - test_fraction) * counts + _EPS).astype(np.int64)
    n_train = np.where(counts >= 2, np.clip(n_train, 1, counts - 1), counts)
    is_train = np.empty(sorted_users.size, dtype=bool)
    is_train[unit_order] = position < np.repeat(n_train, counts)
    return is_train


def _finish(df: pd.DataFrame, row_is_train: np.ndarray, cutoff: pd.Timestamp | None) -> Split:
    train = df.loc[row_is_train].reset_index(drop=True)
    test = df.loc[~row_is_train].reset_index(drop=True)
    if train.empty or test.empty:
        raise ValueError(f"split is degenerate: {len(train)} train rows, {len(test)} test rows")
    logger.info(
        "split %d rows: %d train, %d test (%.3f test)",
        len(df),
        len(train),
        len(test),
        len(test) / len(df),
    )
    return Split(train=train, test=test, cutoff=cutoff)


def stratified_split(df: pd.DataFrame, test_fraction: float = 0.25, seed: int = 42) -> Split:
    """Per-user random split: about ``test_fraction`` of each user's items go to test.

    The unit is the (user, item) pair: all interactions of a pair land on the same side, so a
    test item is never already seen in train and no row leaks. With one interaction per pair
    (e.g. MovieLens ratings) this is a per-row split. See the module docstring for the exact
    per-user count.

    Parameters
    ----------
    df
        Interactions with ``user_id`` and ``item_id``.
    test_fraction
        Share of each user's distinct items held out, in ``(0, 1)``.
    seed
        Seed of the random permutation; equal inputs and seeds give equal splits.
    """
    _validate(df, test_fraction, need_time=False)
    pair_codes, first_rows = _units(df, ["user_id", "item_id"])
    unit_users = pd.factorize(df["user_id"], sort=True)[0][first_rows]
    unit_random = np.random.default_rng(seed).random(first_rows.size)
    unit_order = np.lexsort((unit_random, unit_users))
    unit_is_train = _per_user_split(unit_users, unit_order, test_fraction)
    return _finish(df, unit_is_train[pair_codes], cutoff=None)


def temporal_split(df: pd.DataFrame, test_fraction: float = 0.25) -> Split:
    """Per-user time split: the latest ``test_fraction`` of each user's interactions is test.

    The unit is the distinct (user, item, timestamp) triple, so exact duplicate events stay
    together. Within a user, units are ordered by timestamp and ties by ``item_id``, so the
    result does not depend on row order. For every user the last training timestamp is at or
    before the first test timestamp. Items re-consumed after the boundary appear in both
    sides (as in reality); an evaluation that excludes seen items cannot hit them.

    Parameters
    ----------
    df
        Interactions with ``user_id``, ``item_id`` and a tz-aware ``timestamp``.
    test_fraction
        Share of each user's events held out, in ``(0, 1)``.
    """
    _validate(df, test_fraction, need_time=True)
    unit_codes, first_rows = _units(df, ["user_id", "item_id", "timestamp"])
    unit_users = pd.factorize(df["user_id"], sort=True)[0][first_rows]
    unit_items = pd.factorize(df["item_id"], sort=True)[0][first_rows]
    unit_times = pd.DatetimeIndex(df["timestamp"]).asi8[first_rows]
    unit_order = np.lexsort((unit_items, unit_times, unit_users))
    unit_is_train = _per_user_split(unit_users, unit_order, test_fraction)
    return _finish(df, unit_is_train[unit_codes], cutoff=None)


def global_time_split(
    df: pd.DataFrame, cutoff: pd.Timestamp | None = None, test_fraction: float = 0.2
) -> Split:
    """Global time split: every interaction at or after ``cutoff`` is test.

    Parameters
    ----------
    df
        Interactions with a tz-aware ``timestamp``.
    cutoff
        Tz-aware boundary. When ``None`` it is the ``1 - test_fraction`` quantile of the
        timestamps (lower interpolation, so it is an observed time), which puts roughly
        ``test_fraction`` of the rows in test (more when many rows share the boundary time).
    test_fraction
        Used only when ``cutoff`` is ``None``.

    Returns
    -------
    Split
        With ``cutoff`` set to the boundary used.
    """
    _validate(df, test_fraction, need_time=True)
    if cutoff is None:
        cutoff = df["timestamp"].quantile(1.0 - test_fraction, interpolation="lower")
    else:
        cutoff = pd.Timestamp(cutoff)
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be tz-aware (the timestamps are UTC)")
    row_is_train = (df["timestamp"] < cutoff).to_numpy()
    return _finish(df, row_is_train, cutoff=cutoff)

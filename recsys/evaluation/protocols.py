"""Offline evaluation protocols: how events are cut into what a model sees and what scores it.

``stratified``
    The Microsoft Recommenders protocol for MovieLens: per user, a random 75 % of the distinct
    items is training and the rest is test (:func:`recsys.evaluation.splits.stratified_split`).
``temporal``
    Per user, the latest 25 % of the events is test
    (:func:`~recsys.evaluation.splits.temporal_split`):
    the model predicts what each user does next from what they did before.
``cold``
    One global time cut (:func:`~recsys.evaluation.splits.global_time_split`): events after
    the latest 25 % of timestamps are test, and the metrics count only the **new items**,
    those whose first interaction is after the cut (:attr:`Fold.new_items`): what a model
    that learns from behaviour alone cannot recommend.

Under both, every interaction is a positive (a rating of 1 star counts like one of 5),
relevance is binary, items seen in training are removed from the rankings and from the
relevant sets, every model ranks the full catalogue, and only users known in training are
scored. A :class:`Fold` is one such cut; the same protocol cut again inside a fold's
training part gives the validation fold on which every hyperparameter is chosen, so test
events never steer a choice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.evaluation.splits import global_time_split, stratified_split, temporal_split
from recsys.features.interactions import to_interactions

logger = logging.getLogger(__name__)

__all__ = [
    "PROTOCOLS",
    "Fold",
    "binary_interactions",
    "feature_cutoff",
    "make_fold",
    "relevant_items",
]

PROTOCOLS = ("stratified", "temporal", "cold")
TEST_FRACTION = 0.25


@dataclass(frozen=True)
class Fold:
    """One train/test cut of an event log.

    Attributes
    ----------
    train
        Events a model may learn from, features included.
    test
        Held-out events; only :attr:`relevant` is derived from them.
    relevant
        Test items of each user known in training, minus the items the user saw in training.
    protocol, seed
        How the cut was made.
    new_items
        Test items that no training event touches (scored alone under ``cold``).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    relevant: dict[str, set[str]]
    protocol: str
    seed: int
    new_items: frozenset[str] = frozenset()

    def scored(self) -> dict[str, set[str]]:
        """The relevant items the metrics count: the new ones only under ``cold``."""
        if self.protocol != "cold":
            return self.relevant
        kept = {user: items & self.new_items for user, items in self.relevant.items()}
        return {user: items for user, items in kept.items() if items}

    def validation(self, seed: int) -> Fold:
        """The same protocol applied to this fold's training events (for tuning)."""
        return make_fold(self.train, self.protocol, seed)


def make_fold(
    events: pd.DataFrame, protocol: str, seed: int, test_fraction: float = TEST_FRACTION
) -> Fold:
    """Cut ``events`` by ``protocol``; ``seed`` drives the stratified draw only.

    Parameters
    ----------
    events
        Validated events (``user_id``, ``item_id``, ``event_type``, ``value``, UTC
        ``timestamp``, ...), as :func:`recsys.events.importers.load_dataset` returns them.
    protocol
        One of :data:`PROTOCOLS`.
    seed
        Seed of the stratified split; the temporal split is deterministic.
    test_fraction
        Share of each user's items (stratified) or events (temporal) held out.
    """
    if protocol == "stratified":
        split = stratified_split(events, test_fraction, seed=seed)
    elif protocol == "temporal":
        split = temporal_split(events, test_fraction)
    elif protocol == "cold":
        split = global_time_split(events, test_fraction=test_fraction)
    else:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    relevant = relevant_items(split.train, split.test)
    if not relevant:
        raise ValueError(f"the {protocol} split leaves no test item for a known user")
    new = frozenset(set(split.test["item_id"]) - set(split.train["item_id"]))
    return Fold(split.train, split.test, relevant, protocol, seed, new)


def relevant_items(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, set[str]]:
    """Test items per user known in ``train``, each user's training items removed."""
    known = pd.Index(train["user_id"].unique())
    seen = pd.MultiIndex.from_frame(train[["user_id", "item_id"]])
    pairs = test[["user_id", "item_id"]].drop_duplicates()
    keep = pairs["user_id"].isin(known) & ~pd.MultiIndex.from_frame(pairs).isin(seen)
    pairs = pairs[keep]
    return {user: set(items) for user, items in pairs.groupby("user_id")["item_id"]}


def binary_interactions(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item) with a positive signal, ``weight`` 1 (every rating a positive)."""
    frame = to_interactions(events)
    frame["weight"] = np.float32(1.0)
    return frame


def feature_cutoff(events: pd.DataFrame) -> pd.Timestamp:
    """The moment features of ``events`` are read as of: the end of the last event's UTC day.

    Offline tables stamp a day's values at its end (:mod:`recsys.features.tables`), so this is
    the earliest time at which the last training event is visible, and nothing later is.
    """
    return events["timestamp"].max().floor("D") + pd.Timedelta(days=1)

"""Choosing the pipeline's hyperparameters on a validation fold.

Each candidate generator is fitted on the validation fold's training events and scored by
NDCG@k of its own top-k lists against the fold's held-out items; the best setting per
generator wins (ties keep the earlier, simpler setting). The validation fold is carved from
the training part of the evaluation fold (:meth:`recsys.evaluation.protocols.Fold.validation`), so
test events never influence a choice. The ranker's settings and rounds are chosen by
cross-validation over the validation fold's label users.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from recsys.evaluation.metrics import evaluate_rankings
from recsys.evaluation.protocols import Fold, binary_interactions
from recsys.features.ranker_inputs import ZSCORE
from recsys.models.als import ALSCandidates
from recsys.models.generator import CandidateGenerator
from recsys.models.item_to_item import (
    EASECandidates,
    ItemKNNCandidates,
    ease_weights,
    gram_of,
)
from recsys.models.matrix import InteractionMatrix
from recsys.models.ranker import Ranker, RankerParams, base_column
from recsys.models.recommender import EASE_MAX_ITEMS, CandidateParams
from training.train import RankerLists

logger = logging.getLogger(__name__)

#: ALS settings tried: (factors, regularization, alpha), 20 iterations each.
ALS_GRID: tuple[tuple[int, float, float], ...] = tuple(
    itertools.product((16, 32, 64), (5.0, 20.0), (1.0, 3.0))
)
#: EASE systems solved: (l2, dropout); dropout 0 is EASE, above it DLAE (Steck 2020), which
#: on ml-100k's validation folds beats EASE (stratified: 0.266 against 0.264 NDCG@10).
EASE_SYSTEMS: tuple[tuple[float, float], ...] = (
    (100.0, 0.0), (200.0, 0.0), (400.0, 0.0), (800.0, 0.0),
    (100.0, 0.5), (300.0, 0.5), (100.0, 0.67), (300.0, 0.67),
)
#: EASE settings tried: (l2, dropout, half_life_events); None weighs the whole history alike.
EASE_GRID: tuple[tuple[float, float, float | None], ...] = tuple(
    (l2, dropout, half) for (l2, dropout), half in itertools.product(
        EASE_SYSTEMS, (None, 10.0, 30.0))
)
ALS_ITERATIONS = 20
#: Sweeps every ALS setting gets before the best :data:`ALS_FINALISTS` get all of them.
ALS_SCREEN_ITERATIONS = 6
ALS_FINALISTS = 4
#: Validation users each setting is scored on (a seeded sample beyond it).
TUNING_USERS = 5_000
#: Neighbours of the item-kNN that replaces EASE above its catalog bound.
KNN_NEIGHBOURS = 100
#: Ranker settings tried: (num_leaves, learning_rate, min_child_samples). Near-additive
#: trees of 3 leaves blend the generators' ranks smoothly; 15 leaves can also learn how
#: the Feast features modulate them.
RANKER_GRID: tuple[tuple[int, float, int], ...] = ((3, 0.1, 50), (15, 0.05, 100))
#: How much better than every generator's own order (relative NDCG@10 on the validation
#: lists) the ranker must be to be kept.
RANKER_MARGIN = 0.03
#: Weights of the better generator tried by :func:`best_blend` (the other gets the rest).
BLEND_WEIGHTS = (0.3, 0.5, 0.7)
#: Folds of the label users that pick the ranker's setting and number of rounds.
RANKER_FOLDS = 3


@dataclass(frozen=True)
class Trial:
    """One setting of one generator and its validation score."""

    generator: str
    params: dict[str, Any]
    ndcg: float
    seconds: float


def validation_ndcg(
    generator: CandidateGenerator, fold: Fold, k: int, interactions: Any = None
) -> float:
    """NDCG@k of ``generator`` fitted on ``fold.train`` and ranking for ``fold.relevant``."""
    generator.fit(binary_interactions(fold.train) if interactions is None else interactions)
    return fitted_ndcg(generator, fold, k)


def scored_users(fold: Fold) -> dict[str, set[str]]:
    """The validation users a setting is scored on: all of them up to :data:`TUNING_USERS`,
    else a sample seeded by the fold (the same for every setting), so a grid over 100,000
    users ranks a few thousand full catalogs per setting, not all of them."""
    if len(fold.relevant) <= TUNING_USERS:
        return fold.relevant
    rng = np.random.default_rng(fold.seed)
    users = rng.choice(sorted(fold.relevant), TUNING_USERS, replace=False)
    return {user: fold.relevant[user] for user in sorted(users)}


def fitted_ndcg(generator: CandidateGenerator, fold: Fold, k: int) -> float:
    """NDCG@k of an already fitted ``generator`` ranking for the fold's :func:`scored_users`."""
    relevant = scored_users(fold)
    recs = generator.recommend(list(relevant), k)
    lists = {user: items for user, (items, _) in recs.items()}
    n_items = generator.interactions.n_items
    return evaluate_rankings(lists, relevant, k, catalog_size=n_items)[f"ndcg_at_{k}"]


def _trial(name: str, params: dict[str, Any], score: Callable[[], float], k: int) -> Trial:
    start = time.perf_counter()
    ndcg = score()
    logger.info("%s %s: validation ndcg@%d %.4f", name, params, k, ndcg)
    return Trial(name, params, ndcg, time.perf_counter() - start)


def _search(
    name: str, grid: Sequence[dict[str, Any]], factory: Callable[..., CandidateGenerator],
    fold: Fold, k: int, interactions: Any,
) -> list[Trial]:
    return [_trial(name, params, lambda p=params: validation_ndcg(factory(**p), fold, k,
                                                                  interactions), k)
            for params in grid]


def _best(trials: list[Trial]) -> Trial:
    return max(trials, key=lambda t: t.ndcg)  # max keeps the first of equal scores


def _als_search(fold: Fold, k: int, interactions: Any, base: CandidateParams) -> list[Trial]:
    """Successive halving: every setting of :data:`ALS_GRID` gets
    :data:`ALS_SCREEN_ITERATIONS` sweeps, the best :data:`ALS_FINALISTS` the full
    :data:`ALS_ITERATIONS` (the finalists' trials come last)."""
    def grid(iterations: int, settings: Sequence[tuple[int, float, float]]) -> list[dict]:
        return [{"factors": f, "regularization": r, "alpha": a, "iterations": iterations,
                 "random_state": base.seed, "num_threads": base.num_threads}
                for f, r, a in settings]

    screen = _search("als", grid(ALS_SCREEN_ITERATIONS, ALS_GRID), ALSCandidates, fold, k,
                     interactions)
    ranked = sorted(range(len(screen)), key=lambda i: -screen[i].ndcg)[:ALS_FINALISTS]
    finalists = [ALS_GRID[i] for i in sorted(ranked)]
    return screen + _search("als", grid(ALS_ITERATIONS, finalists), ALSCandidates, fold, k,
                            interactions)


def _item_to_item_search(fold: Fold, k: int, interactions: Any, n_items: int) -> list[Trial]:
    """EASE over :data:`EASE_GRID` up to :data:`~recsys.models.recommender.EASE_MAX_ITEMS`
    items (one Gram matrix, one solve per ``(l2, dropout)`` of :data:`EASE_SYSTEMS` shared by
    its history weightings); item-kNN
    over the half-lives above it, as :func:`~recsys.models.recommender.build_candidates`
    then serves."""
    if n_items > EASE_MAX_ITEMS:
        return _search("ease", [{"neighbours": KNN_NEIGHBOURS, "half_life_events": half}
                                for half in dict.fromkeys(h for _, _, h in EASE_GRID)],
                       ItemKNNCandidates, fold, k, interactions)
    gram = gram_of(InteractionMatrix.from_frame(interactions))
    trials = []
    for l2, dropout in EASE_SYSTEMS:
        weights = ease_weights(gram, l2, dropout)
        for half in (h for a, b, h in EASE_GRID if (a, b) == (l2, dropout)):
            model = EASECandidates(l2=l2, half_life_events=half, dropout=dropout)
            trials.append(_trial("ease", {"l2": l2, "dropout": dropout, "half_life_events": half},
                                 lambda m=model, w=weights: fitted_ndcg(
                                     m.fit_with_weights(interactions, w), fold, k), k))
    return trials


def tune_candidates(
    fold: Fold, k: int, base: CandidateParams | None = None, n_items: int | None = None,
) -> tuple[CandidateParams, list[Trial]]:
    """The ALS and item-to-item settings with the best validation NDCG@k on ``fold``.

    Parameters
    ----------
    fold
        A validation fold (cut from training events only).
    k
        Cut-off of the NDCG that picks the winner.
    base
        Parameters kept as given (list length, seed); the tuned fields are replaced.
    n_items
        Catalog size the tuned model will be fitted on (EASE or item-kNN); the fold's own
        by default.

    Returns
    -------
    tuple
        The chosen :class:`CandidateParams` and every trial, in search order.
    """
    base = base or CandidateParams()
    interactions = binary_interactions(fold.train)
    n_items = n_items or int(interactions["item_id"].nunique())
    als = _als_search(fold, k, interactions, base)
    ease = _item_to_item_search(fold, k, interactions, n_items)
    best_als = _best([t for t in als if t.params["iterations"] == ALS_ITERATIONS])
    best_ease = _best(ease)
    params = replace(
        base,
        als_factors=best_als.params["factors"],
        als_regularization=best_als.params["regularization"],
        als_alpha=best_als.params["alpha"],
        als_iterations=ALS_ITERATIONS,
        ease_l2=best_ease.params.get("l2", base.ease_l2),
        ease_half_life_events=best_ease.params["half_life_events"],
        ease_dropout=best_ease.params.get("dropout", base.ease_dropout),
    )
    logger.info("tuned candidates: %s", params)
    return params, als + ease


def tune_ranker(lists: RankerLists, base: RankerParams) -> tuple[Ranker, list[Trial]]:
    """The ranker of :data:`RANKER_GRID` with the best cross-validated NDCG@10, refitted.

    Each setting is cross-validated over :data:`RANKER_FOLDS` folds of the users in
    ``lists`` (a validation fold's label users), which also fixes its number of rounds; the
    winner is refitted on every list with that many rounds.
    """
    X, relevance, groups = lists.part(np.ones(len(lists.users), dtype=bool))
    trials = []
    for leaves, rate, min_child in RANKER_GRID:
        params = replace(base, num_leaves=leaves, learning_rate=rate,
                         min_child_samples=min_child)
        start = time.perf_counter()
        rounds, ndcg = Ranker(params).cross_validate(X, relevance, groups, RANKER_FOLDS)
        described = {"num_leaves": leaves, "learning_rate": rate,
                     "min_child_samples": min_child, "rounds": rounds}
        trials.append(Trial("ranker", described, ndcg, time.perf_counter() - start))
        logger.info("ranker %s: cross-validated ndcg@10 %.4f", described, ndcg)
    best = _best(trials).params
    params = replace(base, num_leaves=best["num_leaves"], learning_rate=best["learning_rate"],
                     min_child_samples=best["min_child_samples"], n_estimators=best["rounds"])
    return Ranker(params).fit(X, relevance, groups), trials


def list_ndcg(lists: RankerLists, scores: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over the lists of ``lists`` with each list's candidates ordered by
    ``scores`` (NaN last): LightGBM's ``ndcg@k`` of the ranker's cross-validation, for any
    order."""
    frame = pd.DataFrame({"user": lists.list_ids, "relevance": lists.relevance.astype(float),
                          "score": np.nan_to_num(np.asarray(scores, float), nan=-np.inf)})

    def dcg(order: list[str]) -> pd.Series:
        ranked = frame.sort_values(["user", *order], ascending=[True, False], kind="stable")
        position = ranked.groupby("user", sort=False).cumcount().to_numpy()
        gain = (2.0 ** ranked["relevance"].to_numpy() - 1.0) / np.log2(position + 2.0)
        return pd.Series(np.where(position < k, gain, 0.0)).groupby(
            ranked["user"].to_numpy()).sum()

    ideal = dcg(["relevance"])
    return float((dcg(["score"]) / ideal.where(ideal > 0)).fillna(1.0).mean())


def generator_columns(X: pd.DataFrame) -> dict[str, str]:
    """Each generator's score column among the ranker inputs ``X``: its score standardized
    within the list (:data:`~recsys.features.ranker_inputs.ZSCORE`, the same order within a
    list) or, without it, the raw score (:func:`~recsys.models.ranker.base_column`)."""
    names = [c.removesuffix("_score") for c in X.columns if c.endswith("_score")]
    names += [c.removesuffix(ZSCORE) for c in X.columns if c.endswith(ZSCORE)]
    return {name: base_column(name, X.columns) for name in dict.fromkeys(names)}


def best_blend(lists: RankerLists, scores: dict[str, float]) -> tuple[Ranker, float]:
    """The blend of the two generators with the best orders in ``scores`` whose weights
    (:data:`BLEND_WEIGHTS`, the first's; the second gets the rest) give the best NDCG@10 on
    ``lists``; a fixed order, so that figure is not optimistic."""
    first, second = sorted(scores, key=lambda name: -scores[name])[:2]
    features = list(lists.X.columns)
    trials = [Ranker.fixed({first: w, second: 1.0 - w}, features) for w in BLEND_WEIGHTS]
    ndcgs = [list_ndcg(lists, order.predict(lists.X)) for order in trials]
    best = int(np.argmax(ndcgs))
    return trials[best], ndcgs[best]


def ranker_or_generator(
    lists: RankerLists, ranker: Ranker, ranker_trials: list[Trial],
) -> tuple[Ranker, dict[str, float]]:
    """The order that ranks the union, chosen on the validation ``lists`` alone (never test
    data): the ranker or a fixed order of the generators.

    The fixed orders are each generator's own and the blend of the two best
    (:func:`best_blend`); they fit nothing on the lists, so the best of them there is at
    least the best generator's. The ranker is kept when its cross-validated NDCG@10 beats the
    best fixed order's by :data:`RANKER_MARGIN`: the margin allows for its optimism on its own
    validation lists (its labels and features come from one fold, its rounds are chosen on
    them): under a random split a ranker 1-2 % ahead there loses to its generator on test
    data, under a time split one 10 % ahead wins by a third.

    Returns the chosen :class:`~recsys.models.ranker.Ranker` (its ``order`` names it; a fixed
    order is a ranker without a booster) and the NDCG@10 of each option on the lists (the
    ranker's: cross-validated).
    """
    scores = {"ranker": _best(ranker_trials).ndcg}
    features = list(lists.X.columns)
    fixed: dict[str, Ranker] = {}
    for name, column in generator_columns(lists.X).items():
        fixed[name] = Ranker.fixed({name: 1.0}, features)
        scores[name] = list_ndcg(lists, lists.X[column].to_numpy())
    generators = {name: scores[name] for name in fixed}
    if len(generators) >= 2:
        fixed["blend"], scores["blend"] = best_blend(lists, generators)
    if not fixed:
        return ranker, scores
    best = max(fixed, key=scores.__getitem__)
    chosen = ranker if scores["ranker"] > (1.0 + RANKER_MARGIN) * scores[best] else fixed[best]
    logger.info("order on validation lists: %s (%s)", chosen.order, scores)
    return chosen, scores


def choose_ranker(lists: RankerLists, params: RankerParams
                  ) -> tuple[Ranker, dict[str, float], list[Trial]]:
    """The second stage learned from validation ``lists``: :func:`tune_ranker` then
    :func:`ranker_or_generator`. The evaluation's pipeline and the Dagster ``ranker_model``
    asset both call it, so both choose the same way; returns the chosen ranker, the NDCG@10
    of every option and the trials of :func:`tune_ranker`."""
    ranker, trials = tune_ranker(lists, params)
    chosen, scores = ranker_or_generator(lists, ranker, trials)
    return chosen, scores, trials

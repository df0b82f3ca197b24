"""Fitting and ranking each evaluated model on one fold: popularity, ALS alone, the pipeline.

Every model learns from ``fold.train`` only and ranks the full catalogue for the users in
``fold.relevant``, items seen in training removed. The pipeline is the platform's champion
recipe, trained the way the platform trains it but with the fold's cuts instead of time
windows:

1. a validation fold is carved from ``fold.train`` by the same protocol; its training part
   is ``base``, its held-out part ``label``;
2. ALS and EASE hyperparameters are chosen on it (:mod:`training.tuning`);
3. the union of popularity, ALS and EASE candidates is fitted on ``base`` and the LambdaRank
   ranker learns, from those lists, which candidates were in ``label`` (hard negatives: the
   other candidates), reading features through the Feast FeatureService from tables computed
   from ``base`` events only, as of the end of ``base``; early stopping uses a tenth of the
   label users (:func:`training.train.train_ranker`);
4. the ranker is kept only if its cross-validated NDCG@10 on those lists beats every
   fixed order of them (each generator's own, and the blend of the two best generators'
   scores standardized within each list) by the margin; otherwise the best fixed order ranks
   the union (:func:`training.tuning.choose_ranker`, the Dagster ``ranker_model`` asset's
   choice too; ``details["order"]`` says which, ``details["order_weights"]`` the fixed
   order's weights);
5. the candidates are refitted on all of ``fold.train`` and the chosen order ranks them for
   the test users, with features computed from ``fold.train`` events only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from recsys.evaluation.holdout import pipeline_rankings
from recsys.evaluation.protocols import Fold, binary_interactions, feature_cutoff
from recsys.features.names import RANKER_SERVICE
from recsys.features.snapshot import FeatureSnapshots
from recsys.models.content import ContentCandidates, existing_items
from recsys.models.exploration import EXPLORE_SLOTS
from recsys.models.generator import CandidateGenerator
from recsys.models.popularity import PopularityCandidates
from recsys.models.ranker import RankerParams
from recsys.models.recommender import CandidateParams, Recommender, build_candidates
from training.train import TrainingConfig, ranker_lists
from training.tuning import Trial, choose_ranker, tune_candidates

logger = logging.getLogger(__name__)

#: Seed offset of the validation fold, so it differs from the test split of the same seed.
VALIDATION_SEED_OFFSET = 1000


@dataclass
class ModelRun:
    """Top-k lists of one model on one fold, and what they cost.

    Attributes
    ----------
    rankings
        ``user_id -> item ids``, best first.
    fit_seconds
        Wall time from the fold's training events to a model ready to rank (tuning,
        feature tables and ranker included for the pipeline).
    predict_seconds
        Wall time to rank every evaluated user (feature retrieval included).
    details
        Chosen hyperparameters and training statistics.
    """

    rankings: dict[str, list[str]]
    fit_seconds: float
    predict_seconds: float
    details: dict[str, Any] = field(default_factory=dict)


def run_popularity(fold: Fold, k: int) -> ModelRun:
    """The most popular training items, the same list for every user (seen ones removed)."""
    return _run_alone(PopularityCandidates(), fold, k)


def run_generator(fold: Fold, params: CandidateParams, name: str, k: int) -> ModelRun:
    """One of the pipeline's generators alone (``als``, ``item2item``: EASE, or item-kNN for
    large catalogs), built as the pipeline builds it with the hyperparameters tuned for it."""
    n_items = int(fold.train["item_id"].nunique())
    return _run_alone(build_candidates(params, n_items).generator(name), fold, k)


def run_als(fold: Fold, params: CandidateParams, k: int) -> ModelRun:
    """Implicit ALS alone, with the hyperparameters tuned for the pipeline's ALS."""
    return run_generator(fold, params, "als", k)


def run_content(fold: Fold, items: pd.DataFrame, params: CandidateParams, k: int) -> ModelRun:
    """The content generator alone: items with few or no interactions, by metadata."""
    return _run_alone(ContentCandidates(existing_items(items, feature_cutoff(fold.train)),
                                        max_interactions=params.content_max_interactions),
                      fold, k)


def _run_alone(model: CandidateGenerator, fold: Fold, k: int) -> ModelRun:
    """One generator fitted on the fold's training events and ranking its test users."""
    start = time.perf_counter()
    model.fit(binary_interactions(fold.train))
    fitted = time.perf_counter()
    recs = model.recommend(list(fold.relevant), k)
    return ModelRun({u: items for u, (items, _) in recs.items()}, fitted - start,
                    time.perf_counter() - fitted)


def _label_frame(relevant: dict[str, set[str]]) -> pd.DataFrame:
    """The label fold's relevant items as interactions of weight 1 (binary labels)."""
    rows = [(user, item) for user, items in relevant.items() for item in sorted(items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    frame["weight"] = 1.0
    return frame


@dataclass(frozen=True)
class PipelineSettings:
    """What the pipeline evaluation fixes rather than tunes.

    Attributes
    ----------
    n_per_generator
        Candidates per generator: 50 of each keep the lists near 90 items, enough for a
        top-10 and half the ranker's work of 100.
    ranker
        Ranker settings that :func:`training.tuning.tune_ranker` does not vary.
    threads
        Threads of ALS and LightGBM.
    service
        The FeatureService the ranker reads.
    explore_slots
        New items (the content generator's) per list (:func:`recsys.models.exploration.
        explore`).
    """

    n_per_generator: int = 50
    ranker: RankerParams = field(default_factory=lambda: RankerParams(
        n_estimators=600, early_stopping_rounds=100, valid_fraction=0.2, lambda_l2=10.0,
    ))
    threads: int = 1
    service: str = RANKER_SERVICE
    explore_slots: int = EXPLORE_SLOTS


def run_pipeline(
    fold: Fold, items: pd.DataFrame, snapshots: FeatureSnapshots, k: int,
    settings: PipelineSettings | None = None,
) -> tuple[ModelRun, CandidateParams]:
    """Tune, train and apply the two-stage pipeline (see the module docstring).

    Returns the run and the tuned candidate parameters (ALS alone reuses them).
    """
    settings = settings or PipelineSettings()
    seed = fold.seed
    start = time.perf_counter()
    validation = fold.validation(seed + VALIDATION_SEED_OFFSET)
    n_items = int(fold.train["item_id"].nunique())
    params, trials = tune_candidates(validation, k, CandidateParams(
        n_per_generator=settings.n_per_generator, seed=seed, num_threads=settings.threads,
    ), n_items)
    base = build_candidates(params, n_items, existing_items(
        items, feature_cutoff(validation.train))).fit(binary_interactions(validation.train))
    config = TrainingConfig(candidates=params, seed=seed, feature_service=settings.service)
    lists = ranker_lists(
        base, _label_frame(validation.relevant), snapshots.store(validation.train, items),
        feature_cutoff(validation.train), config, Recommender(base, None, items).item_vectors(),
    )
    order, order_ndcg, ranker_trials = choose_ranker(
        lists, replace(settings.ranker, seed=seed, num_threads=settings.threads)
    )
    train_store = snapshots.store(fold.train, items)
    full = build_candidates(params, n_items, existing_items(
        items, feature_cutoff(fold.train))).fit(binary_interactions(fold.train))
    model = Recommender(full, order, items)
    fitted = time.perf_counter()
    rankings = pipeline_rankings(
        model, sorted(fold.relevant), train_store, feature_cutoff(fold.train), k,
        settings.service, settings.explore_slots,
    )
    best_ranker = max(ranker_trials, key=lambda t: t.ndcg)
    details = {
        "candidates": {key: value for key, value in vars(params).items()
                       if key not in ("seed", "num_threads")},
        "ranker": best_ranker.params,
        "order": order.order,
        "order_weights": order.base or None,
        "order_validation_ndcg": order_ndcg,
        "validation_ndcg": _best_scores(trials + ranker_trials),
        **lists.stats,
    }
    return ModelRun(rankings, fitted - start, time.perf_counter() - fitted, details), params


def _best_scores(trials: list[Trial]) -> dict[str, float]:
    best: dict[str, float] = {}
    for trial in trials:
        best[trial.generator] = max(best.get(trial.generator, -np.inf), trial.ndcg)
    return best

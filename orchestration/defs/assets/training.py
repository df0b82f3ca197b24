"""Training assets: the training window → ALS candidate model → LightGBM LambdaRank ranker."""


from dataclasses import dataclass

import dagster as dg
import pandas as pd

from orchestration.defs.assets.features import (
    feature_registry,
    read_catalog,
    read_validated_events,
)
from orchestration.defs.resources import FeastResource, PlatformStorage
from recsys.evaluation.windows import Windows, between, time_windows
from recsys.features.interactions import to_interactions
from recsys.models.ranker import Ranker, RankerParams
from recsys.models.recommender import CandidateParams, Recommender
from recsys.models.union import UnionCandidates
from training.train import TrainingConfig, fit_candidates, train_ranker

_DEFAULTS = TrainingConfig()
_CANDIDATES, _RANKER = _DEFAULTS.candidates, _DEFAULTS.ranker


class TrainingWindowConfig(dg.Config):
    """Shares of the event time span held out for the ranker's labels and for evaluation."""

    holdout_fraction: float = _DEFAULTS.holdout_fraction
    label_fraction: float = _DEFAULTS.label_fraction
    feature_service: str = _DEFAULTS.feature_service
    seed: int = _DEFAULTS.seed


class CandidateConfig(dg.Config):
    """First-stage hyperparameters (defaults: :class:`~recsys.models.recommender.CandidateParams`)."""

    n_per_generator: int = _CANDIDATES.n_per_generator
    als_factors: int = _CANDIDATES.als_factors
    als_regularization: float = _CANDIDATES.als_regularization
    als_alpha: float = _CANDIDATES.als_alpha
    als_iterations: int = _CANDIDATES.als_iterations
    ease_l2: float = _CANDIDATES.ease_l2


class RankerConfig(dg.Config):
    """LambdaRank hyperparameters; defaults are :class:`recsys.models.ranker.RankerParams`'s."""

    num_leaves: int = _RANKER.num_leaves
    learning_rate: float = _RANKER.learning_rate
    n_estimators: int = _RANKER.n_estimators
    min_child_samples: int = _RANKER.min_child_samples
    max_ranker_users: int = _DEFAULTS.max_ranker_users


@dataclass(frozen=True)
class TrainingData:
    """Interactions, catalog and the time cuts every training and evaluation step shares."""

    interactions: pd.DataFrame
    catalog: pd.DataFrame
    windows: Windows
    config: TrainingConfig


@dataclass(frozen=True)
class CandidateModel:
    """The fitted first stage and the parameters it was built with."""

    candidates: UnionCandidates
    params: CandidateParams


@dataclass(frozen=True)
class RankerArtifact:
    ranker: Ranker
    config: TrainingConfig
    stats: dict[str, float]


@dg.asset(group_name="training", deps=[feature_registry], kinds={"pandas"})
def training_data(
    context: dg.AssetExecutionContext, config: TrainingWindowConfig, storage: PlatformStorage
) -> TrainingData:
    """Interactions of all validated events, cut by time into base, label and holdout."""
    interactions = to_interactions(read_validated_events(storage))
    cfg = TrainingConfig(
        holdout_fraction=config.holdout_fraction, label_fraction=config.label_fraction,
        feature_service=config.feature_service, seed=config.seed,
    )
    windows = time_windows(interactions, cfg.holdout_fraction, cfg.label_fraction)
    context.add_output_metadata({
        "interactions": len(interactions),
        "users": int(interactions["user_id"].nunique()),
        "items": int(interactions["item_id"].nunique()),
        **{f"window_{k}": v for k, v in windows.as_dict().items()},
    })
    return TrainingData(interactions, read_catalog(storage), windows, cfg)


@dg.asset(group_name="training", kinds={"implicit"})
def als_candidates(
    context: dg.AssetExecutionContext, config: CandidateConfig, training_data: TrainingData
) -> CandidateModel:
    """ALS candidate model, with popularity and item-to-item generators, fitted on ``base``."""
    params = CandidateParams(**config.model_dump(), seed=training_data.config.seed)
    candidates = fit_candidates(
        training_data.interactions, params, training_data.windows.label_start
    )
    context.add_output_metadata({"generators": [g.name for g in candidates.generators],
                                 "n_per_generator": params.n_per_generator})
    return CandidateModel(candidates, params)


@dg.asset(group_name="training", kinds={"lightgbm", "feast"})
def ranker_model(
    context: dg.AssetExecutionContext,
    config: RankerConfig,
    training_data: TrainingData,
    als_candidates: CandidateModel,
    feast: FeastResource,
) -> RankerArtifact:
    """LightGBM LambdaRank over the candidates, on point-in-time features from Feast."""
    data = training_data
    cfg = TrainingConfig(
        holdout_fraction=data.config.holdout_fraction, label_fraction=data.config.label_fraction,
        max_ranker_users=config.max_ranker_users, candidates=als_candidates.params,
        ranker=RankerParams(
            num_leaves=config.num_leaves, learning_rate=config.learning_rate,
            n_estimators=config.n_estimators, min_child_samples=config.min_child_samples,
            seed=data.config.seed,
        ),
        feature_service=data.config.feature_service, seed=data.config.seed,
    )
    vectors = Recommender(als_candidates.candidates, None, data.catalog).item_vectors()
    labels = between(data.interactions, data.windows.label_start, data.windows.holdout_start)
    ranker, stats = train_ranker(
        als_candidates.candidates, labels, feast.store(), data.windows.label_start, cfg, vectors
    )
    top = dict(list(ranker.feature_importance().items())[:10])
    context.add_output_metadata({**stats, "top_features": dg.MetadataValue.json(top)})
    return RankerArtifact(ranker=ranker, config=cfg, stats=stats)

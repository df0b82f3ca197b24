"""Training assets: the training window → the base window's candidates → the LambdaRank ranker."""

import dagster as dg

from orchestration.defs.assets.features import feature_registry, read_catalog, read_validated_events
from orchestration.defs.resources import FeastResource, PlatformStorage
from recsys.models.ranker import RankerParams
from recsys.models.recommender import CandidateParams
from recsys.models.union import UnionCandidates
from training import train
from training.train import TrainedRanker, TrainingConfig, TrainingData

_DEFAULTS = TrainingConfig()
_CANDIDATES, _RANKER = _DEFAULTS.candidates, _DEFAULTS.ranker


class TrainingRunConfig(dg.Config):
    """The run's training configuration, in one place; every default is the library's
    (:class:`training.train.TrainingConfig`, :class:`~recsys.models.recommender.CandidateParams`,
    :class:`~recsys.models.ranker.RankerParams`)."""

    holdout_fraction: float = _DEFAULTS.holdout_fraction
    label_fraction: float = _DEFAULTS.label_fraction
    feature_service: str = _DEFAULTS.feature_service
    seed: int = _DEFAULTS.seed
    max_ranker_users: int = _DEFAULTS.max_ranker_users
    max_eval_users: int = _DEFAULTS.max_eval_users
    n_per_generator: int = _CANDIDATES.n_per_generator
    als_factors: int = _CANDIDATES.als_factors
    als_regularization: float = _CANDIDATES.als_regularization
    als_alpha: float = _CANDIDATES.als_alpha
    als_iterations: int = _CANDIDATES.als_iterations
    ease_l2: float = _CANDIDATES.ease_l2
    #: 0: EASE; above: DLAE (:func:`recsys.models.item_to_item.ease_weights`).
    ease_dropout: float = _CANDIDATES.ease_dropout
    num_leaves: int = _RANKER.num_leaves
    learning_rate: float = _RANKER.learning_rate
    n_estimators: int = _RANKER.n_estimators
    min_child_samples: int = _RANKER.min_child_samples

    def training_config(self) -> TrainingConfig:
        return TrainingConfig(
            holdout_fraction=self.holdout_fraction, label_fraction=self.label_fraction,
            max_ranker_users=self.max_ranker_users, max_eval_users=self.max_eval_users,
            feature_service=self.feature_service,
            seed=self.seed,
            candidates=CandidateParams(
                n_per_generator=self.n_per_generator, als_factors=self.als_factors,
                als_regularization=self.als_regularization, als_alpha=self.als_alpha,
                als_iterations=self.als_iterations, ease_l2=self.ease_l2,
                ease_dropout=self.ease_dropout, seed=self.seed,
            ),
            ranker=RankerParams(
                num_leaves=self.num_leaves, learning_rate=self.learning_rate,
                n_estimators=self.n_estimators, min_child_samples=self.min_child_samples,
                seed=self.seed,
            ),
        )


@dg.asset(group_name="training", deps=[feature_registry], kinds={"pandas"})
def training_data(
    context: dg.AssetExecutionContext, config: TrainingRunConfig, storage: PlatformStorage
) -> TrainingData:
    """Interactions of all validated events, cut by time into base, label and holdout."""
    data = train.training_data(read_validated_events(storage), read_catalog(storage),
                               config.training_config())
    interactions = data.interactions
    context.add_output_metadata({
        "interactions": len(interactions),
        "users": int(interactions["user_id"].nunique()),
        "items": int(interactions["item_id"].nunique()),
        **{f"window_{k}": v for k, v in data.windows.as_dict().items()},
    })
    return data


@dg.asset(group_name="training", kinds={"implicit"})
def base_candidates(
    context: dg.AssetExecutionContext, training_data: TrainingData
) -> UnionCandidates:
    """Popularity, ALS and item-to-item generators fitted on the base window: they propose
    the lists the ranker learns to order."""
    candidates = train.base_candidates(training_data)
    context.add_output_metadata({"generators": candidates.names,
                                 "n_per_generator": candidates.n_per_generator})
    return candidates


@dg.asset(group_name="training", kinds={"lightgbm", "feast"})
def ranker_model(
    context: dg.AssetExecutionContext,
    training_data: TrainingData,
    base_candidates: UnionCandidates,
    feast: FeastResource,
) -> TrainedRanker:
    """LightGBM LambdaRank over the candidates, on point-in-time features from Feast, or the
    fixed order of the generators that replaces it, chosen on the label window's lists as
    the offline evaluation chooses (``order``, ``order_weights``)."""
    trained = train.fit_label_ranker(training_data, base_candidates, feast.store())
    ranker = trained.ranker
    top = dict(list(ranker.feature_importance().items())[:10])
    context.add_output_metadata({**trained.stats, "top_features": dg.MetadataValue.json(top),
                                 "order": ranker.order,
                                 "order_weights": dg.MetadataValue.json(ranker.base)})
    return trained

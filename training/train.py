"""Training the two-stage recommender on a time window, with point-in-time Feast features.

The window is cut in three by time (UTC midnights, so daily feature rows never straddle a cut):

``base`` [start, label_start)  candidates are fitted here;
``label`` [label_start, holdout_start)  the ranker learns which candidates users then chose;
``holdout`` [holdout_start, end]  evaluation only.

Ranker features are read through the FeatureService as of ``label_start``; the ranker thus
learns to rank with exactly what the online store would have held at that moment.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from feast import FeatureStore

from recsys.evaluation.windows import Windows, before, between, time_windows
from recsys.events.catalog import complete_catalog
from recsys.features.context import (
    CONTEXT_FEATURES,
    context_columns,
    daypart_of,
    event_devices,
)
from recsys.features.interactions import to_interactions
from recsys.features.names import RANKER_SERVICE
from recsys.features.ranker_inputs import CONTEXT_DERIVED, feature_matrix
from recsys.models.content import existing_items
from recsys.models.ranker import Ranker, RankerParams
from recsys.models.recommender import CandidateParams, Recommender, build_candidates
from recsys.models.union import UnionCandidates

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """What to train and on which windows."""

    holdout_fraction: float = 0.15
    label_fraction: float = 0.15
    max_ranker_users: int = 3000
    #: Holdout users the evaluation ranks, a seeded sample beyond it (the scale world's
    #: holdout holds ~75,000 users, each with hundreds of featured candidates).
    max_eval_users: int = 10_000
    candidates: CandidateParams = field(default_factory=CandidateParams)
    ranker: RankerParams = field(default_factory=RankerParams)
    feature_service: str = RANKER_SERVICE
    seed: int = 42

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainingConfig:
        values = dict(data)
        values["candidates"] = CandidateParams(**values.get("candidates", {}))  # type: ignore[arg-type]
        values["ranker"] = RankerParams(**values.get("ranker", {}))  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def as_params(self) -> dict[str, object]:
        """Flat parameters for MLflow."""
        flat: dict[str, object] = {}
        for key, value in asdict(self).items():
            if isinstance(value, dict):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        return flat


@dataclass(frozen=True)
class TrainingData:
    """Interactions, catalog and the time cuts every training and evaluation step shares."""

    interactions: pd.DataFrame
    catalog: pd.DataFrame
    windows: Windows
    config: TrainingConfig


def training_data(events: pd.DataFrame, catalog: pd.DataFrame,
                  config: TrainingConfig) -> TrainingData:
    """Interactions of validated ``events``, cut by time into base, label and holdout; the
    catalog gains the items of the events it lacks (:func:`~recsys.events.catalog.
    complete_catalog`), so every item the models know is served and featured."""
    interactions = with_devices(to_interactions(events), events)
    windows = time_windows(interactions, config.holdout_fraction, config.label_fraction)
    return TrainingData(interactions, complete_catalog(catalog, events), windows, config)


@dataclass(frozen=True)
class TrainedRanker:
    """The chosen second stage (its ``order`` says which: :class:`~recsys.models.ranker.
    Ranker`) and the statistics of the lists it learned from."""

    ranker: Ranker
    stats: dict[str, float]


def with_devices(interactions: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``interactions`` with the ``device`` of each pair's last event (None: not given)."""
    if "context" not in events:
        return interactions.assign(device=None)
    last = (events.assign(device=event_devices(events["context"]))
            .sort_values("timestamp", kind="stable")
            .groupby(["user_id", "item_id"], sort=False, observed=True)["device"].last())
    keys = pd.MultiIndex.from_frame(interactions[["user_id", "item_id"]])
    return interactions.assign(device=last.reindex(keys).to_numpy())


def context_lists(frame: pd.DataFrame, labels: pd.DataFrame
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The candidate lists and labels with a ``list_id`` per list.

    Each user's candidates form one list without context (``list_id`` = the user, every
    label theirs) and, when the labels carry timestamps, one more per part of the day in
    which the user chose items: its labels are those choices, its context
    (:func:`recsys.features.context.context_columns`) the moment and device of the first.
    The ranker thus learns what users choose at which time and on which device, and to rank
    without a context too.
    """
    unknown = np.full(len(frame), np.nan, dtype=np.float32)  # the dtype of context_columns
    plain = frame.assign(list_id=frame["user_id"], **dict.fromkeys(CONTEXT_FEATURES, unknown))
    labels = labels.assign(list_id=labels["user_id"])
    if "timestamp" not in labels or labels.empty:
        return plain, labels
    timed = labels.assign(list_id=labels["user_id"].astype(str) + "@" + pd.Series(
        daypart_of(labels["timestamp"].dt.hour.to_numpy()), index=labels.index).astype(str))
    first = timed.sort_values("timestamp", kind="stable").groupby("list_id", sort=True).first()
    devices = first["device"] if "device" in first else [None] * len(first)
    moments = pd.DataFrame({"list_id": first.index, "user_id": first["user_id"].to_numpy(),
                            **context_columns(first["timestamp"], devices)})
    contextual = frame.merge(moments, on="user_id", how="inner")
    return (pd.concat([plain, contextual], ignore_index=True),
            pd.concat([labels, timed], ignore_index=True))


def _relevance(frame: pd.DataFrame, future: pd.DataFrame) -> np.ndarray:
    """Graded relevance: 0 not chosen, 1 interacted, 2 strongly (weight of a purchase+)."""
    weights = future.groupby(["list_id", "item_id"])["weight"].sum()
    keys = pd.MultiIndex.from_frame(frame[["list_id", "item_id"]])
    w = weights.reindex(keys).fillna(0.0).to_numpy()
    return np.where(w >= 5.0, 2, np.where(w > 0, 1, 0)).astype(np.int32)


@dataclass(frozen=True)
class RankerLists:
    """Labelled candidate lists, one contiguous group of rows per list (a user's lists
    together).

    Attributes
    ----------
    X
        Ranker inputs (:func:`recsys.models.ranker.feature_matrix`).
    relevance
        Label of each row (0: the user did not choose the candidate).
    users
        User of each row.
    stats
        Sizes and candidate recall, for logging.
    lists
        List of each row (:func:`context_lists`); the user when None.
    """

    X: pd.DataFrame
    relevance: np.ndarray
    users: np.ndarray
    stats: dict[str, float]
    lists: np.ndarray | None = None

    @property
    def list_ids(self) -> np.ndarray:
        return self.users if self.lists is None else self.lists

    def part(self, mask: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """``(X, relevance, group sizes)`` of the rows in ``mask`` (whole users only)."""
        lists = self.list_ids[mask]
        groups = pd.Series(lists).groupby(lists, sort=False).size().to_numpy()
        return self.X[mask], self.relevance[mask], groups

    def subset(self, mask: np.ndarray) -> RankerLists:
        """The lists of the rows in ``mask`` (whole users only)."""
        return RankerLists(X=self.X[mask], relevance=self.relevance[mask],
                           users=self.users[mask], stats=self.stats,
                           lists=None if self.lists is None else self.lists[mask])


def ranker_lists(
    candidates: UnionCandidates, label_interactions: pd.DataFrame, store: FeatureStore,
    as_of: pd.Timestamp, config: TrainingConfig, item_vectors: dict[str, np.ndarray],
) -> RankerLists:
    """Candidate lists of the label users, featured as of ``as_of`` and labelled by them.

    The negatives are the other candidates of the same lists (hard negatives: items the
    first stage itself proposed). Users whose lists hold no chosen item teach LambdaRank
    nothing and are left out; beyond ``config.max_ranker_users`` users a seeded sample is kept.
    """
    rng = np.random.default_rng(config.seed)
    users = sorted(set(label_interactions["user_id"]))
    if len(users) > config.max_ranker_users:
        users = sorted(rng.choice(users, config.max_ranker_users, replace=False).tolist())
    frame = candidates.featured_candidates(users, store, as_of, config.feature_service)
    frame, labels = context_lists(frame, label_interactions)
    frame["relevance"] = _relevance(frame, labels)
    useful = frame.groupby("list_id")["relevance"].transform("max") > 0
    frame = frame[useful].sort_values(["user_id", "list_id"], kind="stable").reset_index(drop=True)
    stats = {
        "ranker_users": float(frame["user_id"].nunique()),
        "ranker_lists": float(frame["list_id"].nunique()),
        "ranker_rows": float(len(frame)),
        "ranker_positive_share": float((frame["relevance"] > 0).mean()),
        "candidate_recall": float(
            (frame.loc[frame["list_id"] == frame["user_id"], "relevance"] > 0).sum()
            / max(len(label_interactions), 1)
        ),
    }
    X = feature_matrix(frame.drop(columns="relevance"), item_vectors)
    if labels["list_id"].nunique() == label_interactions["user_id"].nunique():
        unknown = [*CONTEXT_FEATURES, *CONTEXT_DERIVED]  # no context to learn from
        X = X.drop(columns=[c for c in unknown if c in X])
    return RankerLists(
        X=X,
        relevance=frame["relevance"].to_numpy(),
        users=frame["user_id"].to_numpy(),
        stats=stats,
        lists=frame["list_id"].to_numpy(),
    )


def fit_ranker(lists: RankerLists, params: RankerParams) -> Ranker:
    """LambdaRank on ``lists``, early-stopped on a held-out share of the users.

    ``params.valid_fraction`` of the users (at least one, drawn with ``params.seed``) are
    kept aside when there are more than ten; with fewer, all rounds are trained.
    """
    is_valid = held_out(lists, params)
    valid = lists.part(is_valid) if is_valid.any() else None
    return Ranker(params).fit(*lists.part(~is_valid), valid=valid)


def held_out(lists: RankerLists, params: RankerParams) -> np.ndarray:
    """Rows of the users :func:`fit_ranker` keeps aside to stop on: ``params.valid_fraction``
    of them (at least one, drawn with ``params.seed``) when there are more than ten."""
    kept = pd.unique(lists.users)
    if len(kept) <= 10:
        return np.zeros(len(lists.users), dtype=bool)
    rng = np.random.default_rng(params.seed)
    n_valid = max(1, int(len(kept) * params.valid_fraction))
    return np.isin(lists.users, rng.choice(kept, n_valid, replace=False))


def ranker_params(ranker: Ranker) -> dict[str, object]:
    """MLflow parameters of the chosen second stage: ``ranker.order`` (what ranks, see
    :attr:`~recsys.models.ranker.Ranker.order`) and ``ranker.order_weight.<generator>``, the
    weights of the fixed order it is or corrects."""
    return {"ranker.order": ranker.order,
            **{f"ranker.order_weight.{name}": weight for name, weight in ranker.base.items()}}


def fit_candidates(
    interactions: pd.DataFrame, params: CandidateParams, cut: pd.Timestamp | None = None,
    catalog: pd.DataFrame | None = None,
) -> UnionCandidates:
    """The first stage fitted on the interactions before ``cut`` (all of them if None); the
    ``catalog``'s items without interactions yet are the content generator's."""
    data = interactions if cut is None else before(interactions, cut)
    known = None if catalog is None else existing_items(catalog, cut)
    return build_candidates(params, interactions["item_id"].nunique(), known).fit(data)


def base_candidates(data: TrainingData) -> UnionCandidates:
    """The first stage fitted on the ``base`` window: it proposes the ranker's training lists."""
    return fit_candidates(data.interactions, data.config.candidates, data.windows.label_start,
                          data.catalog)


def fit_label_ranker(data: TrainingData, base: UnionCandidates,
                     store: FeatureStore) -> TrainedRanker:
    """The second stage learned from ``base``'s lists of the label window's users, with
    features as the online store held them at ``label_start``: the ranker of the config's
    settings (:func:`fit_ranker`), or the best fixed order of the generators, chosen by the
    evaluation's rule (:func:`training.tuning.ranker_or_generator`) on the lists of the users
    the ranker stopped on; the returned ranker carries the choice. The evaluation tunes its
    ranker over a grid first (:func:`training.tuning.choose_ranker`); a pipeline run keeps
    the config's settings and one fit. The stats add ``order_ndcg.<option>``, each option's
    NDCG@10 on those lists."""
    from training.tuning import Trial, list_ndcg, ranker_or_generator  # tuning imports this module

    windows = data.windows
    lists = ranker_lists(
        base, between(data.interactions, windows.label_start, windows.holdout_start), store,
        windows.label_start, data.config, Recommender(base, None, data.catalog).item_vectors(),
    )
    ranker = fit_ranker(lists, data.config.ranker)
    is_valid = held_out(lists, data.config.ranker)
    scores: dict[str, float] = {}
    if is_valid.any():
        valid = lists.subset(is_valid)
        alone = Trial("ranker", {}, list_ndcg(valid, ranker.predict(valid.X)), 0.0)
        ranker, scores = ranker_or_generator(valid, ranker, [alone])
    logger.info("ranker_model order: %s %s", ranker.order, ranker.base)
    return TrainedRanker(ranker, {**lists.stats,
                                  **{f"order_ndcg.{k}": float(v) for k, v in scores.items()}})


def holdout_candidates(data: TrainingData) -> UnionCandidates:
    """The first stage fitted on everything before the holdout: what is evaluated."""
    return fit_candidates(data.interactions, data.config.candidates, data.windows.holdout_start,
                          data.catalog)


def serving_candidates(data: TrainingData) -> UnionCandidates:
    """The first stage fitted on every event: what is served."""
    return fit_candidates(data.interactions, data.config.candidates, catalog=data.catalog)


def assemble(data: TrainingData, candidates: UnionCandidates, ranker: Ranker) -> Recommender:
    """The recommender bundle of a first stage and a ranker, with its lineage manifest."""
    return Recommender(candidates, ranker, data.catalog, manifest(data.config, data.windows))


def train_pipeline(data: TrainingData, store: FeatureStore) -> tuple[Recommender, dict[str, float]]:
    """Train a recipe end to end; returns the model for holdout evaluation and its stats.

    The same steps as the Dagster training and evaluation assets, in one call (to retrain the
    champion's recipe on a new window).
    """
    trained = fit_label_ranker(data, base_candidates(data), store)
    return assemble(data, holdout_candidates(data), trained.ranker), trained.stats


def manifest(config: TrainingConfig, windows: Windows) -> dict[str, object]:
    """Lineage stored with every model: feature service, data window, config."""
    return {
        "feature_service": config.feature_service,
        "data_window": windows.as_dict(),
        "config": config.to_dict(),
    }

"""LightGBM LambdaRank ranker over candidate lists, and the feature matrix it reads.

The ranker's inputs are, for each (user, item) candidate: every scalar feature of the Feast
FeatureService (full names, ``view__feature``), the candidate generators' scores and ranks,
and features derived from Feast arrays (category match, similarity to recent items). The
same :func:`feature_matrix` builds them for training and serving, and the model stores the
column order it was trained on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

AFFINITY = "user_activity__category_affinity"
CATEGORY_IDS = "item_stats__category_ids"
RECENT_ITEMS = "user_recent__recent_items"
KEYS = ("user_id", "item_id", "event_timestamp")


class RankerFitError(RuntimeError):
    """Training data cannot produce a ranker (no positives, one-item groups only, ...)."""


@dataclass(frozen=True)
class RankerParams:
    """LambdaRank hyperparameters (LightGBM names).

    ``n_estimators`` is the most boosting rounds; with early stopping, training ends
    ``early_stopping_rounds`` after NDCG@10 last improved on the ``valid_fraction`` of users
    held out (:func:`training.train.fit_ranker`). ``num_threads`` should not exceed the
    cores that are free: LightGBM's OpenMP threads spin, so on a busy machine one thread
    is several times faster than two.
    """

    num_leaves: int = 31
    learning_rate: float = 0.05
    n_estimators: int = 300
    min_child_samples: int = 20
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.9
    lambda_l2: float = 0.0
    lambdarank_truncation_level: int = 20
    early_stopping_rounds: int = 30
    valid_fraction: float = 0.1
    seed: int = 42
    num_threads: int = 2


def _shared(values: pd.Series) -> tuple[np.ndarray, list[object]]:
    """Code of each row's object and the distinct objects, by identity.

    Feature retrieval spreads one user's (or item's) array over all its candidate rows as
    the same Python object, so grouping by identity turns per-row work into per-entity work
    without comparing array contents.
    """
    codes = pd.factorize(pd.Series([id(v) for v in values], dtype=np.int64))[0]
    objects = values.to_numpy()
    return codes, [objects[i] for i in np.unique(codes, return_index=True)[1]]


def category_match(affinity: pd.Series, category_ids: pd.Series) -> np.ndarray:
    """Mean of the user's category affinity over the item's categories (0 when unknown).

    Category indices beyond the user's affinity vector are ignored.
    """
    out = np.zeros(len(affinity), dtype=np.float32)
    if len(affinity) == 0:
        return out
    user_code, users = _shared(affinity)
    item_code, items = _shared(category_ids)
    width = max([len(a) for a in users if a is not None] + [0])
    if width == 0:
        return out
    aff = np.zeros((len(users), width), dtype=np.float32)
    for row, values in enumerate(users):
        if values is not None and len(values):
            aff[row, : len(values)] = np.asarray(values, dtype=np.float32)
    lengths = np.array([0 if a is None else len(a) for a in users])
    member = np.zeros((len(items), width), dtype=np.float32)
    for row, cats in enumerate(items):
        if cats is not None and len(cats):
            idx = np.asarray(cats, dtype=np.int64)
            member[row, idx[(idx >= 0) & (idx < width)]] = 1.0
    valid = np.arange(width)[None, :] < lengths[:, None]
    total = np.einsum("ij,ij->i", aff[user_code], member[item_code])
    count = np.einsum("ij,ij->i", valid[user_code].astype(np.float32), member[item_code])
    np.divide(total, count, out=out, where=count > 0)
    return out


def recent_similarity(
    items: pd.Series, recent: pd.Series, item_vectors: dict[str, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max cosine similarity between each item and the user's recent items.

    ``item_vectors`` maps item id to a unit-norm embedding (ALS item factors); items without
    one contribute nothing, and a recent item equal to the candidate is skipped. Returns
    zeros when no embedding is available.
    """
    mean = np.zeros(len(items), dtype=np.float32)
    best = np.zeros(len(items), dtype=np.float32)
    if not item_vectors or len(items) == 0:
        return mean, best
    ids = list(item_vectors)
    position = {item: i for i, item in enumerate(ids)}
    vectors = np.stack([np.asarray(item_vectors[i], dtype=np.float32) for i in ids])
    item_pos = np.fromiter((position.get(i, -1) for i in items), np.int64, len(items))
    codes, histories = _shared(recent)
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(histories)))]
    for code, history in enumerate(histories):
        if history is None or len(history) == 0:
            continue
        past = np.fromiter((position.get(h, -1) for h in history), np.int64, len(history))
        past = past[past >= 0]
        rows = order[bounds[code] : bounds[code + 1]]
        rows = rows[item_pos[rows] >= 0]
        if past.size == 0 or rows.size == 0:
            continue
        sims = vectors[item_pos[rows]] @ vectors[past].T
        valid = item_pos[rows][:, None] != past[None, :]
        count = valid.sum(axis=1)
        ok = count > 0
        mean[rows[ok]] = np.where(valid, sims, 0.0).sum(axis=1)[ok] / count[ok]
        best[rows[ok]] = np.where(valid, sims, -np.inf).max(axis=1)[ok]
    return mean, best


def feature_matrix(
    frame: pd.DataFrame, item_vectors: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Numeric ranker inputs from candidates joined with Feast features.

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
    if AFFINITY in frame and CATEGORY_IDS in frame:
        numeric["category_match"] = category_match(frame[AFFINITY], frame[CATEGORY_IDS])
    if RECENT_ITEMS in frame:
        sim_mean, sim_max = recent_similarity(frame["item_id"], frame[RECENT_ITEMS], item_vectors)
        numeric["recent_sim_mean"] = sim_mean
        numeric["recent_sim_max"] = sim_max
    return numeric


def _check_lists(X: pd.DataFrame, relevance: np.ndarray, groups: np.ndarray) -> None:
    if relevance.sum() <= 0:
        raise RankerFitError("no positive candidate in the training lists")
    if int(groups.sum()) != len(X):
        raise RankerFitError(f"group sizes sum to {groups.sum()}, rows are {len(X)}")


class Ranker:
    """A LightGBM LambdaRank model with the feature order it was trained on."""

    def __init__(self, params: RankerParams | None = None):
        self.params = params or RankerParams()
        self.booster: lgb.Booster | None = None
        self.features: list[str] = []
        self.valid_ndcg = float("nan")

    def fit(
        self,
        X: pd.DataFrame,
        relevance: np.ndarray,
        groups: np.ndarray,
        valid: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None = None,
    ) -> Ranker:
        """Train on candidate lists.

        Parameters
        ----------
        X
            Feature rows, grouped contiguously by user.
        relevance
            Graded relevance per row (0 = not interacted).
        groups
            Sizes of the consecutive per-user groups; they sum to ``len(X)``.
        valid
            Optional validation lists for early stopping, in the same form.
        """
        _check_lists(X, relevance, groups)
        self.features = list(X.columns)
        p = self.params
        lgb_params = self._lgb_params()
        train_set = lgb.Dataset(X, label=relevance, group=groups, free_raw_data=False)
        callbacks = []
        valid_sets = []
        if valid is not None:
            Xv, yv, gv = valid
            valid_sets = [lgb.Dataset(Xv[self.features], label=yv, group=gv, reference=train_set)]
            callbacks.append(lgb.early_stopping(p.early_stopping_rounds, verbose=False))
        self.booster = lgb.train(
            lgb_params, train_set, num_boost_round=p.n_estimators,
            valid_sets=valid_sets, callbacks=callbacks,
        )
        if valid is not None:
            # predict and save_model use the best iteration from here on.
            self.valid_ndcg = float(self.booster.best_score["valid_0"]["ndcg@10"])
        logger.info("ranker trained: %d rounds kept, %d features",
                    self.rounds, len(self.features))
        return self

    def _lgb_params(self) -> dict[str, object]:
        p = self.params
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "num_leaves": p.num_leaves,
            "learning_rate": p.learning_rate,
            "min_child_samples": p.min_child_samples,
            "feature_fraction": p.feature_fraction,
            "bagging_fraction": p.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": p.lambda_l2,
            "lambdarank_truncation_level": p.lambdarank_truncation_level,
            "seed": p.seed,
            "num_threads": p.num_threads,
            "deterministic": True,
            "verbosity": -1,
        }

    def cross_validate(
        self, X: pd.DataFrame, relevance: np.ndarray, groups: np.ndarray, folds: int
    ) -> tuple[int, float]:
        """Rounds and NDCG@10 at the best mean over ``folds`` folds of whole groups.

        Groups are dealt to folds in a random order drawn with ``params.seed``; each fold's
        model early-stops with ``params.early_stopping_rounds`` patience on the mean curve.
        Nothing is kept: refit on all lists with ``n_estimators`` set to the rounds found.
        """
        _check_lists(X, relevance, groups)
        if not 2 <= folds <= len(groups):
            raise RankerFitError(f"cannot cut {len(groups)} groups into {folds} folds")
        group_fold = np.random.default_rng(self.params.seed).permutation(len(groups)) % folds
        row_fold = np.repeat(group_fold, groups)
        splits = [(np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f))
                  for f in range(folds)]
        data = lgb.Dataset(X, label=relevance, group=groups, free_raw_data=False)
        curves = lgb.cv(
            self._lgb_params(), data, num_boost_round=self.params.n_estimators, folds=splits,
            callbacks=[lgb.early_stopping(self.params.early_stopping_rounds, verbose=False)],
        )
        curve = curves["valid ndcg@10-mean"]
        return len(curve), float(curve[-1])

    @property
    def rounds(self) -> int:
        """Boosting rounds the model predicts with (the best one under early stopping)."""
        if self.booster is None:
            return 0
        return int(self.booster.best_iteration or self.booster.current_iteration())

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Scores (higher is better); missing feature columns are filled with NaN."""
        if self.booster is None:
            raise RuntimeError("ranker is not trained")
        return self.booster.predict(X.reindex(columns=self.features), num_threads=1)

    def feature_importance(self) -> dict[str, float]:
        if self.booster is None:
            return {}
        gains = self.booster.feature_importance(importance_type="gain")
        return dict(sorted(zip(self.features, map(float, gains), strict=True),
                           key=lambda kv: -kv[1]))

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.booster is None:
            raise RuntimeError("ranker is not trained")
        self.booster.save_model(str(path / "ranker.txt"))
        (path / "ranker.json").write_text(json.dumps(
            {"features": self.features, "params": asdict(self.params)}, indent=1
        ))

    @classmethod
    def load(cls, path: Path) -> Ranker:
        meta = json.loads((path / "ranker.json").read_text())
        ranker = cls(RankerParams(**meta["params"]))
        ranker.booster = lgb.Booster(model_file=str(path / "ranker.txt"))
        ranker.features = meta["features"]
        return ranker

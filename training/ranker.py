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
    """LambdaRank hyperparameters (LightGBM names)."""

    num_leaves: int = 31
    learning_rate: float = 0.05
    n_estimators: int = 300
    min_child_samples: int = 20
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.9
    lambdarank_truncation_level: int = 20
    early_stopping_rounds: int = 30
    seed: int = 42
    num_threads: int = 2


def category_match(affinity: pd.Series, category_ids: pd.Series) -> np.ndarray:
    """Mean of the user's category affinity over the item's categories (0 when unknown)."""
    out = np.zeros(len(affinity), dtype=np.float32)
    for i, (aff, cats) in enumerate(zip(affinity, category_ids, strict=True)):
        if aff is None or cats is None or len(cats) == 0 or len(aff) == 0:
            continue
        aff_arr = np.asarray(aff, dtype=np.float32)
        idx = np.asarray(cats, dtype=np.int64)
        idx = idx[idx < len(aff_arr)]
        if len(idx):
            out[i] = float(aff_arr[idx].mean())
    return out


def recent_similarity(
    items: pd.Series, recent: pd.Series, item_vectors: dict[str, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max cosine similarity between each item and the user's recent items.

    ``item_vectors`` maps item id to a unit-norm embedding (ALS item factors); items without
    one contribute nothing. Returns zeros when no embedding is available.
    """
    mean = np.zeros(len(items), dtype=np.float32)
    best = np.zeros(len(items), dtype=np.float32)
    if not item_vectors:
        return mean, best
    for i, (item_id, history) in enumerate(zip(items, recent, strict=True)):
        vec = item_vectors.get(item_id)
        if vec is None or history is None or len(history) == 0:
            continue
        others = [item_vectors[h] for h in history if h in item_vectors and h != item_id]
        if others:
            sims = np.stack(others) @ vec
            mean[i], best[i] = float(sims.mean()), float(sims.max())
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


class Ranker:
    """A LightGBM LambdaRank model with the feature order it was trained on."""

    def __init__(self, params: RankerParams | None = None):
        self.params = params or RankerParams()
        self.booster: lgb.Booster | None = None
        self.features: list[str] = []

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
        if relevance.sum() <= 0:
            raise RankerFitError("no positive candidate in the training lists")
        if int(groups.sum()) != len(X):
            raise RankerFitError(f"group sizes sum to {groups.sum()}, rows are {len(X)}")
        self.features = list(X.columns)
        p = self.params
        lgb_params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "num_leaves": p.num_leaves,
            "learning_rate": p.learning_rate,
            "min_child_samples": p.min_child_samples,
            "feature_fraction": p.feature_fraction,
            "bagging_fraction": p.bagging_fraction,
            "bagging_freq": 1,
            "lambdarank_truncation_level": p.lambdarank_truncation_level,
            "seed": p.seed,
            "num_threads": p.num_threads,
            "deterministic": True,
            "verbosity": -1,
        }
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
        logger.info("ranker trained: %d trees, %d features",
                    self.booster.num_trees(), len(self.features))
        return self

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

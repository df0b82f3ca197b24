"""LightGBM LambdaRank ranker over candidate lists.

Its inputs are defined in :mod:`recsys.features.ranker_inputs`; the model stores the column
order it was trained on and saves as LightGBM's text format plus JSON (no pickle).
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

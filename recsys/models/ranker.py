"""LightGBM LambdaRank ranker over candidate lists, or a fixed order of its generators.

Its inputs are defined in :mod:`recsys.features.ranker_inputs`; the model stores the column
order it was trained on and saves as LightGBM's text format plus JSON (no pickle).

A ranker may carry a **base order**: weights of the generators' scores standardized within
the list (``<generator>_score_z``). Its score is then the weighted sum plus the booster's, and
the booster, trained with that sum as its initial score, learns only a correction of it; a
ranker without a booster is the base order alone (one generator's order, or a blend). The
training choice among them (:func:`training.tuning.ranker_or_generator`) thus travels inside
the model to every place that scores with it: the evaluation, the Dagster assets, the service.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from recsys.features.ranker_inputs import ZSCORE

logger = logging.getLogger(__name__)

#: A base-order generator's standardized score for a candidate it did not retrieve (below
#: everything it retrieved).
ABSENT_Z = -10.0


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


def base_column(generator: str, columns: list[str] | pd.Index) -> str:
    """The column a base order reads for ``generator``: its score standardized within the
    list when ``columns`` hold it (the same order within a list, comparable across lists),
    else its raw score."""
    standardized = generator + ZSCORE
    return standardized if standardized in columns else f"{generator}_score"


class Ranker:
    """A LightGBM LambdaRank model with the feature order it was trained on, over an optional
    base order (see the module docstring).

    Parameters
    ----------
    params
        LambdaRank hyperparameters.
    base
        ``generator -> weight`` of the base order; empty: the booster alone.
    """

    def __init__(self, params: RankerParams | None = None,
                 base: Mapping[str, float] | None = None):
        self.params = params or RankerParams()
        self.base = dict(base or {})
        self.booster: lgb.Booster | None = None
        self.features: list[str] = []
        self.valid_ndcg = float("nan")

    @classmethod
    def fixed(cls, base: Mapping[str, float], features: list[str]) -> Ranker:
        """The base order alone, no booster: ``features`` are the columns it is given (those
        of the lists it was chosen on)."""
        ranker = cls(base=base)
        ranker.features = list(features)
        return ranker

    @property
    def order(self) -> str:
        """What ranks: ``ranker`` (booster alone), ``ranker_over_<base>`` (a booster correcting a
        base order), or the base order alone: a generator's name or ``blend``."""
        base = next(iter(self.base)) if len(self.base) == 1 else "blend"
        if self.booster is None:
            return base
        return f"ranker_over_{base}" if self.base else "ranker"

    def base_scores(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The base order's score of each row (zeros without one); an ``ndarray`` ``X`` is in
        :attr:`features` order."""
        n = len(X)
        out = np.zeros(n, dtype=np.float64)
        columns = self.features if isinstance(X, np.ndarray) else list(X.columns)
        for generator, weight in self.base.items():
            j = columns.index(base_column(generator, columns))
            values = X[:, j] if isinstance(X, np.ndarray) else X.iloc[:, j].to_numpy()
            out += weight * np.nan_to_num(np.asarray(values, np.float64), nan=ABSENT_Z)
        return out

    def _dataset(self, X: pd.DataFrame, relevance: np.ndarray, groups: np.ndarray,
                 reference: lgb.Dataset | None = None) -> lgb.Dataset:
        init = self.base_scores(X) if self.base else None
        return lgb.Dataset(X, label=relevance, group=groups, init_score=init,
                           reference=reference, free_raw_data=False)

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
        train_set = self._dataset(X, relevance, groups)
        callbacks = []
        valid_sets = []
        if valid is not None:
            Xv, yv, gv = valid
            valid_sets = [self._dataset(Xv[self.features], yv, gv, reference=train_set)]
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
        data = self._dataset(X, relevance, groups)
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

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Scores (higher is better): the base order's plus the booster's. A frame's missing
        feature columns are filled with NaN; an ``ndarray`` is in :attr:`features` order."""
        if self.booster is None and not self.base:
            raise RuntimeError("ranker is not trained")
        if isinstance(X, pd.DataFrame):
            X = X.reindex(columns=self.features)
        scores = self.base_scores(X)
        if self.booster is not None:
            scores = scores + self.booster.predict(X, num_threads=1)
        return scores

    def feature_importance(self) -> dict[str, float]:
        if self.booster is None:
            return {}
        gains = self.booster.feature_importance(importance_type="gain")
        return dict(sorted(zip(self.features, map(float, gains), strict=True),
                           key=lambda kv: -kv[1]))

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.booster is None and not self.base:
            raise RuntimeError("ranker is not trained")
        if self.booster is not None:
            self.booster.save_model(str(path / "ranker.txt"))
        (path / "ranker.json").write_text(json.dumps(
            {"features": self.features, "params": asdict(self.params), "base": self.base},
            indent=1,
        ))

    @classmethod
    def load(cls, path: Path) -> Ranker:
        meta = json.loads((path / "ranker.json").read_text())
        ranker = cls(RankerParams(**meta["params"]), meta.get("base"))
        if (path / "ranker.txt").is_file():
            ranker.booster = lgb.Booster(model_file=str(path / "ranker.txt"))
        ranker.features = meta["features"]
        return ranker

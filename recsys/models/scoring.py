"""The second stage on the request path: the ranker's scores of one user's candidates.

The inputs come from :class:`~recsys.features.ranker_inputs.OnlineInputs` (the same columns
training reads through :func:`~recsys.features.ranker_inputs.feature_matrix`); the booster
scores them compiled by lleaves (:mod:`recsys.models.compiled_ranker`) when a cache folder is
given and compiling works, else through LightGBM.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from recsys.features.item_table import ItemTable
from recsys.features.ranker_inputs import OnlineInputs
from recsys.models.compiled_ranker import CompiledRanker, compile_ranker
from recsys.models.recommender import Recommender
from recsys.models.retrieval import Candidates


class CandidateScorer:
    """Scores candidates with the recommender's ranker: its LightGBM booster plus the base
    order it carries (:class:`~recsys.models.ranker.Ranker`; ALS score without a ranker)."""

    def __init__(self, recommender: Recommender, items: ItemTable,
                 compiled_dir: Path | None = None):
        ranker = recommender.ranker
        self.ranker = ranker
        self.booster = ranker.booster if ranker is not None else None
        self.compiled: CompiledRanker | None = None
        if self.booster is not None and compiled_dir is not None:
            self.compiled = compile_ranker(self.booster, compiled_dir)
        self.inputs = OnlineInputs(list(ranker.features) if ranker else [], items)

    def matrix(self, candidates: Candidates, user: Mapping[str, object],
               context: Mapping[str, float] | None = None,
               recent_rows: np.ndarray | None = None) -> np.ndarray:
        """``(len(candidates), n_features)`` float32 inputs in the ranker's column order, in
        the request's ``context`` (:func:`recsys.features.context.request_context`);
        ``recent_rows`` are the catalog rows of the user's recent items when the caller has
        them."""
        return self.inputs.matrix(candidates.rows, candidates.columns, user, context,
                                  candidates.table, recent_rows)

    def score(self, candidates: Candidates, user: Mapping[str, object],
              context: Mapping[str, float] | None = None,
              recent_rows: np.ndarray | None = None) -> np.ndarray:
        """Ranker scores, higher is better: the booster's plus the base order's."""
        return self.rank(candidates, user, context, recent_rows)[0]

    def rank(self, candidates: Candidates, user: Mapping[str, object],
             context: Mapping[str, float] | None = None,
             recent_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`score`'s scores and the inputs they came from (:meth:`matrix`; None
        without a ranker), which :meth:`contributions` explains."""
        if self.ranker is None:
            return np.nan_to_num(candidates.columns["als_score"], nan=-np.inf), None
        X = self.matrix(candidates, user, context, recent_rows)
        scores = self.ranker.base_scores(X)
        if self.compiled is not None:
            return scores + self.compiled.predict(X), X
        if self.booster is not None:
            return scores + self.booster.predict(X, num_threads=1), X
        return scores, X

    def contributions(self, X: np.ndarray | None,
                      top: int = 5) -> list[list[dict[str, object]]] | None:
        """Each row's ``top`` largest feature contributions to its ranker score (LightGBM's
        ``pred_contrib``, SHAP values in score units), largest magnitude first, with the
        feature's value; ``X`` are rows of the inputs :meth:`rank` scored (a candidate's
        inputs depend on the whole list it was ranked in: its generators' standardized
        scores). None without a ranker."""
        if self.booster is None or X is None or not len(X):
            return None
        shap = self.booster.predict(X, num_threads=1, pred_contrib=True)[:, :-1]  # no bias
        names = self.inputs.features
        out = []
        for x, row in zip(X, shap, strict=True):
            order = np.argsort(-np.abs(row), kind="stable")[:top]
            out.append([{"feature": names[j], "value": None if np.isnan(x[j]) else float(x[j]),
                         "contribution": float(row[j])} for j in order.tolist()])
        return out

"""The recommender bundle: candidate generators, the ranker and what serving needs beside them.

:class:`Recommender` is what training produces, MLflow stores and the BentoML service loads.
It saves to a directory of plain files (npz, LightGBM text, JSON, Parquet), never a pickle.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.features.ranker_inputs import feature_matrix
from recsys.models.als import ALSCandidates
from recsys.models.content import ContentCandidates, content_tokens
from recsys.models.generator import CandidateGenerator
from recsys.models.item_to_item import EASECandidates, ItemKNNCandidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.ranker import Ranker
from recsys.models.union import UnionCandidates

logger = logging.getLogger(__name__)

#: EASE solves a dense items x items system (cubic in the catalog); beyond this many items
#: the sparse item-kNN replaces it, in training, tuning and evaluation alike.
EASE_MAX_ITEMS = 5_000

_ALS = ALSCandidates()  # unfitted: only its defaults are read
_EASE = EASECandidates()


@dataclass(frozen=True)
class CandidateParams:
    """Hyperparameters of the first stage (``num_threads`` 0: every CPU, for ALS)."""

    n_per_generator: int = 100
    als_factors: int = _ALS.factors
    als_regularization: float = _ALS.regularization
    als_alpha: float = _ALS.alpha
    als_iterations: int = _ALS.iterations
    ease_l2: float = _EASE.l2
    ease_half_life_events: float | None = _EASE.half_life_events
    #: 0: EASE; above: its denoising variant DLAE (:func:`~recsys.models.item_to_item.
    #: ease_weights`).
    ease_dropout: float = _EASE.dropout
    seed: int = 42
    num_threads: int = 0
    content_max_interactions: int = 0


def build_candidates(params: CandidateParams, n_items: int,
                     catalog: pd.DataFrame | None = None) -> UnionCandidates:
    """Popularity + ALS + an item-to-item model (EASE, or item-kNN for large catalogs), and
    the content generator of new items when a ``catalog`` describes any item."""
    item_to_item: CandidateGenerator = (
        EASECandidates(
            l2=params.ease_l2, half_life_events=params.ease_half_life_events, name="item2item",
            dropout=params.ease_dropout,
        ) if n_items <= EASE_MAX_ITEMS
        else ItemKNNCandidates(
            neighbours=100, half_life_events=params.ease_half_life_events, name="item2item"
        )
    )
    generators: list[CandidateGenerator] = [
        PopularityCandidates(name="popularity"),
        ALSCandidates(
            factors=params.als_factors, regularization=params.als_regularization,
            alpha=params.als_alpha, iterations=params.als_iterations,
            random_state=params.seed, num_threads=params.num_threads, name="als",
        ),
        item_to_item,
    ]
    if catalog is not None and any(content_tokens(catalog)):
        generators.append(ContentCandidates(
            catalog, max_interactions=params.content_max_interactions, name="content"))
    return UnionCandidates(generators, n_per_generator=params.n_per_generator)


@dataclass
class Recommender:
    """Everything needed to rank for a user, given features from Feast."""

    candidates: UnionCandidates
    ranker: Ranker | None
    catalog: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)

    def generator(self, name: str) -> CandidateGenerator:
        return self.candidates.generator(name)

    def item_vectors(self) -> dict[str, np.ndarray]:
        """Unit-norm ALS item factors by item id (for similarity features and reasons)."""
        cached = getattr(self, "_item_vectors", None)
        if cached is not None:
            return cached
        als = self.generator("als")
        assert isinstance(als, ALSCandidates)
        factors = np.asarray(als.item_factors, dtype=np.float32)
        factors = factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-9)
        vectors = dict(zip(als.interactions.item_ids.tolist(), factors, strict=True))
        self._item_vectors = vectors
        return vectors

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Ranker scores of candidate rows joined with their features (ALS score if no ranker)."""
        if self.ranker is None:
            return frame["als_score"].fillna(-np.inf).to_numpy()
        return self.ranker.predict(feature_matrix(frame, self.item_vectors()))

    def popular_items(self, n: int) -> list[str]:
        """The most popular in-stock items of the training data, best first."""
        pop = self.generator("popularity")
        assert isinstance(pop, PopularityCandidates)
        ranked = pop.ranking(n + len(self.catalog))
        in_stock = set(self.catalog.loc[self.catalog["in_stock"].astype(bool), "item_id"])
        return [item for item in ranked if item in in_stock][:n]

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.candidates.save(path / "candidates")
        if self.ranker is not None:
            self.ranker.save(path / "ranker")
        self.catalog.to_parquet(path / "catalog.parquet", index=False)
        (path / "manifest.json").write_text(json.dumps(self.manifest, indent=1, default=str))

    @classmethod
    def load(cls, path: Path) -> Recommender:
        ranker_dir = path / "ranker"
        return cls(
            candidates=UnionCandidates.load(path / "candidates"),
            ranker=Ranker.load(ranker_dir) if ranker_dir.exists() else None,
            catalog=pd.read_parquet(path / "catalog.parquet"),
            manifest=json.loads((path / "manifest.json").read_text()),
        )

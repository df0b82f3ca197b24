"""Content-based candidates: new items matched to a user's taste by their metadata.

Every catalog item gets a TF-IDF vector over its categories, the words of its title and its
price band (a quintile of the catalog's prices); a user's profile is the sum of the vectors
of their history, weighted as in training, and an item scores the cosine of its vector with
the profile. Only items with at most ``max_interactions`` users in training are proposed: the
other generators know the rest from behaviour, this one finds what nobody (or hardly anybody)
has touched yet, including catalog items absent from the interactions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.models.generator import CandidateGenerator
from recsys.models.matrix import InteractionMatrix, csr_of, save_csr
from recsys.models.topn import top_n

_WORD = re.compile(r"[^\W\d_]{3,}")  # letters only: years and numbers say little of taste
PRICE_BANDS = 5


def existing_items(catalog: pd.DataFrame, moment: pd.Timestamp | None) -> pd.DataFrame:
    """The catalog's items created before ``moment`` (all of them if None; an item without
    ``created_at`` always exists)."""
    if moment is None or "created_at" not in catalog:
        return catalog
    created = pd.to_datetime(catalog["created_at"], utc=True)
    return catalog[(created.isna() | (created < moment)).to_numpy()]


def content_tokens(catalog: pd.DataFrame) -> list[list[str]]:
    """Each item's metadata tokens: ``cat:<category>``, ``word:<title word>``, ``price:<band>``."""
    n = len(catalog)
    categories = catalog["categories"] if "categories" in catalog else pd.Series([None] * n)
    titles = catalog["title"] if "title" in catalog else pd.Series([None] * n)
    prices = (pd.to_numeric(catalog["price"], errors="coerce") if "price" in catalog
              else pd.Series(np.nan, index=catalog.index))
    bands = np.full(n, -1)
    known = prices.notna().to_numpy()
    if known.sum() >= PRICE_BANDS:
        ranks = prices[known].rank(method="first").to_numpy()
        bands[known] = np.minimum((ranks - 1) * PRICE_BANDS // known.sum(), PRICE_BANDS - 1)
    out = []
    for cats, title, band in zip(categories, titles, bands, strict=True):
        listed = isinstance(cats, list | tuple | np.ndarray)
        tokens = [f"cat:{c}" for c in (cats if listed else [])]
        if isinstance(title, str):
            tokens += [f"word:{w}" for w in dict.fromkeys(_WORD.findall(title.lower()))]
        if band >= 0:
            tokens.append(f"price:{band}")
        out.append(tokens)
    return out


def tfidf_matrix(tokens: list[list[str]]) -> sp.csr_matrix:
    """Unit-norm TF-IDF rows (``idf = log(n / df)``; a token of every item weighs 0)."""
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for row, item_tokens in enumerate(tokens):
        for token in item_tokens:
            rows.append(row)
            cols.append(vocabulary.setdefault(token, len(vocabulary)))
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                           shape=(len(tokens), len(vocabulary)))
    df = np.bincount(cols, minlength=len(vocabulary)).astype(np.float64)
    matrix = sp.csr_matrix(matrix @ sp.diags(np.log(max(len(tokens), 1) / np.maximum(df, 1))))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix, dtype=np.float32)


class ContentCandidates(CandidateGenerator):
    """Items with few or no interactions, by metadata similarity to the user's history.

    Parameters
    ----------
    catalog
        Items (``item_id``; ``categories``, ``title``, ``price`` where known) to describe;
        needed to fit, not to load.
    max_interactions
        Most training users an item may have to be proposed.
    """

    def __init__(self, catalog: pd.DataFrame | None = None, max_interactions: int = 5,
                 name: str = "content"):
        super().__init__(name)
        if max_interactions < 0:
            raise ValueError(f"max_interactions must be >= 0, got {max_interactions}")
        self.catalog = catalog
        self.max_interactions = max_interactions
        self._features: sp.csr_matrix | None = None
        self._eligible: np.ndarray | None = None

    def fit(self, interactions: pd.DataFrame) -> Self:
        """Learn from the interactions, over every catalog item (new ones included)."""
        if self.catalog is None:
            raise ValueError("ContentCandidates needs a catalog to fit")
        seen = InteractionMatrix.from_frame(interactions)
        ids = self.catalog["item_id"].astype(str)
        extra = np.asarray(sorted(set(ids) - set(seen.item_ids.tolist())), dtype=str)
        matrix = sp.hstack([seen.matrix, sp.csr_matrix((seen.n_users, len(extra)))]).tocsr()
        self._interactions = InteractionMatrix(seen.user_ids, np.r_[seen.item_ids, extra], matrix)
        self._fit(interactions, self._interactions)
        return self

    def _fit(self, frame: pd.DataFrame, matrix: InteractionMatrix) -> None:
        catalog = self.catalog.assign(item_id=self.catalog["item_id"].astype(str))  # type: ignore[union-attr]
        catalog = catalog.drop_duplicates("item_id").set_index("item_id")
        catalog = catalog.reindex(matrix.item_ids).reset_index()
        self._features = tfidf_matrix(content_tokens(catalog))
        users = np.diff(matrix.matrix.tocsc().indptr)
        self._eligible = (users <= self.max_interactions) & (self._features.getnnz(axis=1) > 0)

    def _scores(self, profile: sp.csr_matrix | np.ndarray) -> np.ndarray:
        features = self._features
        assert features is not None and self._eligible is not None
        scores = np.asarray((sp.csr_matrix(profile) @ features.T).toarray(), dtype=np.float32)
        norms = np.sqrt(np.asarray(sp.csr_matrix(profile).multiply(profile).sum(axis=1)))
        scores /= np.maximum(norms, 1e-12).astype(np.float32)
        scores[:, ~self._eligible] = -np.inf
        return scores

    def user_scores(self, rows: np.ndarray) -> np.ndarray:
        return self._scores(self.interactions.matrix[rows] @ self._features)

    def _top_of_rows(self, rows: np.ndarray, n: int,
                     exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~recsys.models.topn.top_n` over the eligible columns alone (the others
        score ``-inf``): a batch costs users x eligible items, not users x catalog."""
        eligible = np.flatnonzero(self.eligible)
        profile = sp.csr_matrix(self.interactions.matrix[rows] @ self._features)
        scores = np.asarray((profile @ self._features[eligible].T).toarray(),  # type: ignore[index]
                            dtype=np.float32)
        norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)))
        scores /= np.maximum(norms, 1e-12).astype(np.float32)
        if exclude_seen:
            seen = self.interactions.matrix[rows][:, eligible].tocoo()
            scores[seen.row, seen.col] = -np.inf
        n = min(n, self.interactions.n_items)
        cols = np.zeros((len(rows), n), dtype=np.int64)
        values = np.full((len(rows), n), -np.inf, dtype=np.float32)
        top, found = top_n(scores, n)
        cols[:, :top.shape[1]], values[:, :top.shape[1]] = eligible[top], found
        return cols, values

    def item_scores(self, cols: np.ndarray) -> np.ndarray:
        """A session's profile is the sum of its items' vectors."""
        profile = sp.csr_matrix(self._features[cols].sum(axis=0))  # type: ignore[index]
        return self._scores(profile)[0]

    @property
    def eligible(self) -> np.ndarray:
        """Which item columns the generator proposes (few interactions, some metadata)."""
        if self._eligible is None:
            raise RuntimeError(f"ContentCandidates {self.name!r} is not fitted")
        return self._eligible

    def _params(self) -> dict[str, Any]:
        return {"max_interactions": self.max_interactions}

    def _save_state(self, path: Path) -> None:
        save_csr(path / "content.npz", self._features)  # type: ignore[arg-type]
        (path / "eligible.json").write_text(json.dumps(np.flatnonzero(self.eligible).tolist()))

    def _load_state(self, path: Path) -> None:
        with np.load(path / "content.npz", allow_pickle=False) as arrays:
            self._features = csr_of(arrays)
        eligible = np.zeros(self.interactions.n_items, dtype=bool)
        eligible[json.loads((path / "eligible.json").read_text())] = True
        self._eligible = eligible

"""The interface every candidate generator implements, and its persistence.

A generator is fitted on an interaction frame (``user_id``, ``item_id``, ``timestamp``,
optional ``weight``) and answers three questions, each over the whole catalogue:

* :meth:`CandidateGenerator.recommend`: the top ``n`` items of a batch of users (training,
  evaluation);
* :meth:`CandidateGenerator.top_for_user`: the top ``n`` unseen items of one known user (the
  request path);
* :meth:`CandidateGenerator.recommend_from_items`: the top ``n`` items for a set of seed items
  (an anonymous session), where the generator can score from items at all.

Generators save to a directory without pickle (``meta.json`` with the class and
hyper-parameters, ``interactions.npz`` + ``ids.json`` for the training matrix, and the model's
own arrays in ``.npz`` files). Users absent from training get an empty recommendation, never
an exception.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from recsys.models.matrix import InteractionMatrix
from recsys.models.topn import top_n, top_n_of_row

logger = logging.getLogger(__name__)

Recommendations = dict[str, tuple[list[str], np.ndarray]]
"""``user_id -> (item ids, scores)``, best first; scores are float32, higher is better."""

SCORE_BUDGET = 2**24
"""Dense scores materialised per batch (64 MiB of float32)."""


class CandidateGenerator(ABC):
    """Common interface and persistence of the candidate generators.

    Subclasses implement :meth:`_fit`, :meth:`user_scores` (dense scores of all items for a
    batch of known users), :meth:`_params`, and :meth:`_save_state`/:meth:`_load_state` for
    their learned arrays; those that can score from seed items override :meth:`item_scores`.

    Attributes
    ----------
    name
        Short identifier, used as the feature prefix in
        :class:`~recsys.models.union.UnionCandidates`.
    """

    name: str
    _registry: ClassVar[dict[str, type[CandidateGenerator]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        CandidateGenerator._registry[cls.__name__] = cls

    def __init__(self, name: str):
        self.name = name
        self._interactions: InteractionMatrix | None = None

    @property
    def interactions(self) -> InteractionMatrix:
        """The training matrix; raises if the generator is not fitted."""
        if self._interactions is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r} is not fitted")
        return self._interactions

    def fit(self, interactions: pd.DataFrame) -> Self:
        """Learn from an interaction frame; returns ``self``."""
        self._interactions = InteractionMatrix.from_frame(interactions)
        logger.info(
            "fitting %s on %d users x %d items (%d nonzeros)",
            self.name,
            self._interactions.n_users,
            self._interactions.n_items,
            self._interactions.matrix.nnz,
        )
        self._fit(interactions, self._interactions)
        return self

    @abstractmethod
    def _fit(self, frame: pd.DataFrame, matrix: InteractionMatrix) -> None: ...

    @abstractmethod
    def user_scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense float32 ``(len(rows), n_items)`` scores of the known users at ``rows``."""

    def item_scores(self, cols: np.ndarray) -> np.ndarray | None:
        """Dense float32 scores of every item for a session of the item columns ``cols``
        (distinct, known); None when the generator cannot score from items (it knows users,
        not items)."""
        return None

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """Constructor keyword arguments, JSON-serialisable."""

    @abstractmethod
    def _save_state(self, path: Path) -> None: ...

    @abstractmethod
    def _load_state(self, path: Path) -> None: ...

    def user_row(self, user_id: str) -> int:
        """The user's row in the training matrix, -1 for a user it never saw."""
        return int(self.interactions.user_indices([user_id])[0])

    def seen_columns(self, row: int) -> np.ndarray:
        """Item columns the user at ``row`` interacted with in training."""
        csr = self.interactions.matrix
        return csr.indices[csr.indptr[row]:csr.indptr[row + 1]]

    def top_for_user(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns and scores of the ``n`` best items the user at ``row`` has not seen, best
        first: the same list :meth:`recommend` gives that user, for one user at a time."""
        scores = self.user_scores(np.array([row]))[0].astype(np.float32, copy=True)
        scores[self.seen_columns(row)] = -np.inf
        return top_n_of_row(scores, n)

    def _top_of_one_row(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top_for_user` from :meth:`_top_of_rows` (for generators whose batched top-n
        avoids a dense row): the one user's list, its empty slots dropped."""
        cols, values = self._top_of_rows(np.array([row]), n, exclude_seen=True)
        keep = values[0] > -np.inf
        return cols[0][keep], values[0][keep]

    def top_for_items(self, cols: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Columns and scores of the ``n`` best items for a session of ``cols`` (known,
        distinct item columns), the session excluded; None when :meth:`item_scores` is."""
        scores = self.item_scores(cols)
        if scores is None:
            return None
        scores = np.array(scores, dtype=np.float32, copy=True).reshape(-1)
        scores[cols] = -np.inf
        return top_n_of_row(scores, n)

    def recommend_from_items(self, item_ids: Sequence[str], n: int) -> tuple[list[str], np.ndarray]:
        """Top ``n`` items for an anonymous history ("because you watched X").

        Unknown ids are ignored; the given items are excluded from the result. Empty when
        none is known or the generator cannot score from items.
        """
        cols = self.interactions.item_indices(list(item_ids))
        cols = np.unique(cols[cols >= 0])
        found = self.top_for_items(cols, n) if cols.size and n >= 1 else None
        if found is None:
            return [], np.empty(0, np.float32)
        top, values = found
        return self.interactions.item_ids[top].tolist(), values

    def recommend(
        self, user_ids: Sequence[str], n: int, exclude_seen: bool = True
    ) -> Recommendations:
        """Top ``n`` items per user over the whole catalogue, best first.

        Parameters
        ----------
        user_ids
            Users to recommend for; unknown users get empty lists.
        n
            Maximum list length (shorter when fewer items are eligible).
        exclude_seen
            Drop the items each user interacted with in training.
        """
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        user_ids = list(user_ids)
        matrix = self.interactions
        rows = matrix.user_indices(user_ids)
        result: Recommendations = {u: ([], np.empty(0, np.float32)) for u in user_ids}
        known = np.flatnonzero(rows >= 0)
        for chunk, cols, values in self.top_of_rows(rows, n, exclude_seen):
            for offset, pos in enumerate(known[chunk].tolist()):
                keep = values[offset] > -np.inf
                items = matrix.item_ids[cols[offset][keep]].tolist()
                result[user_ids[pos]] = (items, values[offset][keep])
        return result

    def top_of_rows(self, rows: np.ndarray, n: int, exclude_seen: bool = True
                    ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """The top ``n`` columns and scores of the known users among training ``rows`` (-1:
        unknown, skipped), in batches of at most :data:`SCORE_BUDGET` dense scores: each
        batch is a slice of the known rows and ``(len, n)`` columns and scores, ``-inf``
        marking a slot with no item (what :meth:`recommend` drops)."""
        known = rows[rows >= 0]
        batch = max(1, SCORE_BUDGET // max(self.interactions.n_items, 1))
        for start in range(0, known.size, batch):
            chunk = slice(start, min(start + batch, known.size))
            cols, values = self._top_of_rows(known[chunk], n, exclude_seen)
            yield chunk, cols, values

    def _top_of_rows(self, rows: np.ndarray, n: int,
                     exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """Columns and scores of the top ``n`` items of a batch of known users; ``-inf`` marks
        a slot with no item (fewer than ``n`` eligible)."""
        scores = self.user_scores(rows).astype(np.float32, copy=False)
        if exclude_seen:
            seen = self.interactions.matrix[rows].tocoo()
            scores[seen.row, seen.col] = -np.inf
        return top_n(scores, n)

    def save(self, path: Path) -> None:
        """Write the fitted generator into directory ``path``."""
        path = Path(path)
        self.interactions.save(path)
        meta = {"class": type(self).__name__, "name": self.name, "params": self._params()}
        (path / "meta.json").write_text(json.dumps(meta, indent=2))
        self._save_state(path)

    @classmethod
    def load(cls, path: Path) -> CandidateGenerator:
        """Read a generator written by :meth:`save`; the base class dispatches on ``meta.json``."""
        path = Path(path)
        meta = json.loads((path / "meta.json").read_text())
        target = CandidateGenerator._registry.get(meta["class"])
        if target is None or not issubclass(target, cls):
            raise TypeError(f"{path} holds a {meta['class']}, not a {cls.__name__}")
        generator = target(name=meta["name"], **meta["params"])
        generator._interactions = InteractionMatrix.load(path)
        generator._load_state(path)
        return generator

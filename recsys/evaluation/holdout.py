"""Offline evaluation of the pipeline on a temporal holdout, against baselines.

Protocol: the models see only interactions before ``holdout_start``; for every user with a
holdout interaction who is known in training, each model ranks the full catalog, items seen
in training removed; relevance is binary (an interaction in the holdout). Metrics come from
:func:`recsys.evaluation.metrics.evaluate_rankings`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore

from recsys.evaluation.metrics import evaluate_rankings
from recsys.evaluation.plots import markdown_image, new_figure, png_bytes
from recsys.evaluation.windows import Windows, before
from recsys.features.names import RANKER_SERVICE
from recsys.models.exploration import EXPLORE_SLOTS, NEW_ITEMS_GENERATOR, new_candidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.recommender import Recommender

logger = logging.getLogger(__name__)

KS = (1, 5, 10, 20)


@dataclass(frozen=True)
class EvaluationReport:
    """Metrics per model and k: ``table`` has one row per (model, k)."""

    table: pd.DataFrame
    k: int
    n_users: int

    def at_k(self, model: str, metric: str = "ndcg") -> float:
        row = self.table[(self.table["model"] == model) & (self.table["k"] == self.k)]
        if row.empty:
            raise KeyError(f"no evaluation for model {model!r}")
        return float(row[f"{metric}_at_k"].iloc[0])

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat ``<model>.<metric>_at_<k>`` values at the report's k, for MLflow."""
        rows = self.table[self.table["k"] == self.k]
        out = {}
        for _, row in rows.iterrows():
            for column in rows.columns.drop(["model", "k"]):
                name = column.replace("_at_k", f"_at_{self.k}")
                out[f"{prefix}{row['model']}.{name}"] = float(row[column])
        return out

    def png(self, metric: str = "ndcg") -> bytes:
        """A PNG of ``metric`` against k for each model."""
        fig, ax = new_figure(6, 4)
        for model, rows in self.table.groupby("model"):
            ax.plot(rows["k"], rows[f"{metric}_at_k"], marker="o", label=model)
        ax.set_xticks(sorted(self.table["k"].unique()))
        ax.set_xlabel("k")
        ax.set_ylabel(f"{metric.upper()}@k")
        ax.set_title(f"{metric.upper()}@k on the temporal holdout ({self.n_users} users)")
        ax.legend()
        ax.grid(alpha=0.3)
        return png_bytes(fig)

    def plot(self, path: Path, metric: str = "ndcg") -> Path:
        """Write :meth:`png` to ``path``."""
        path.write_bytes(self.png(metric))
        return path

    def plot_markdown(self, metric: str = "ndcg") -> str:
        """Markdown showing :meth:`png` inline, as a base64 ``data:`` URI (for a page, such
        as Dagster's asset metadata, that renders markdown but serves no files)."""
        return markdown_image(self.png(metric), f"{metric.upper()}@k")


def holdout_truth(interactions: pd.DataFrame, windows: Windows) -> dict[str, set[str]]:
    """Holdout items per user known in training, items already seen in training removed."""
    train = before(interactions, windows.holdout_start)
    test = interactions[interactions["timestamp"] >= windows.holdout_start]
    seen = set(zip(train["user_id"], train["item_id"], strict=True))
    known = set(train["user_id"])
    truth: dict[str, set[str]] = {}
    for user, item in zip(test["user_id"], test["item_id"], strict=True):
        if user in known and (user, item) not in seen:
            truth.setdefault(user, set()).add(item)
    return truth


def evaluated_users(truth: dict[str, set[str]], max_users: int | None = None,
                    seed: int = 0) -> list[str]:
    """The users of ``truth``, sorted; beyond ``max_users``, a sample of that many drawn
    with ``seed``."""
    users = sorted(truth)
    if max_users is None or len(users) <= max_users:
        return users
    return sorted(np.random.default_rng(seed).choice(users, max_users, replace=False).tolist())


#: Users whose candidates are featured and ranked in one frame: a scale world's 50,000 test
#: users x ~90 candidates with their features would hold gigabytes at once.
RANK_BATCH_USERS = 10_000


def pipeline_rankings(
    model: Recommender, users: Sequence[str], store: FeatureStore, as_of: pd.Timestamp,
    n: int, service: str, explore_slots: int = EXPLORE_SLOTS,
    batch_users: int = RANK_BATCH_USERS,
) -> dict[str, list[str]]:
    """Top ``n`` per user from candidates → features as of ``as_of`` → ranker, with up to
    ``explore_slots`` new items each (:func:`recsys.models.exploration.explore`); users are
    ranked ``batch_users`` at a time (each user's list is its own: the same lists)."""
    users = list(users)
    rankings: dict[str, list[str]] = {}
    for start in range(0, len(users), batch_users):
        rankings.update(_batch_rankings(model, users[start:start + batch_users], store, as_of,
                                        n, service, explore_slots))
    return rankings


def _batch_rankings(
    model: Recommender, users: list[str], store: FeatureStore, as_of: pd.Timestamp,
    n: int, service: str, explore_slots: int,
) -> dict[str, list[str]]:
    frame = model.candidates.featured_candidates(users, store, as_of, service)
    frame["_score"] = model.score(frame)
    frame = frame.sort_values(["user_id", "_score"], ascending=[True, False], kind="stable")
    new = pd.Series(new_candidates(frame, len(frame)), index=frame.index)
    by_user = frame.groupby("user_id", sort=False)
    # explore() of every user's list at once: the places of new and known items
    content_rank = frame[f"{NEW_ITEMS_GENERATOR}_rank"] if new.any() else pd.Series(0, frame.index)
    rank_new = content_rank.where(new).groupby(frame["user_id"], sort=False).rank(
        method="first") - 1
    rank_known = (~new).groupby(frame["user_id"], sort=False).cumsum() - 1
    new_count = new.groupby(frame["user_id"], sort=False).transform("sum")
    known_count = by_user["_score"].transform("size") - new_count
    n_new = np.minimum(np.minimum(explore_slots, new_count), n)
    n_known = np.minimum(n - n_new, known_count)
    n_new = np.minimum(n - n_known, new_count)
    keep = np.where(new, rank_new < n_new, rank_known < n_known)
    top = frame[keep]
    return {u: list(items) for u, items in top.groupby("user_id", sort=False)["item_id"]}


def evaluate(
    models: dict[str, Recommender], interactions: pd.DataFrame, windows: Windows,
    store: FeatureStore, k: int = 10, service: str = RANKER_SERVICE,
    max_users: int | None = None, seed: int = 0,
) -> EvaluationReport:
    """Rank the holdout users with popularity, ALS alone and each full pipeline in ``models``.

    Every model in ``models`` must have been fitted on data before ``windows.holdout_start``.
    Beyond ``max_users`` holdout users, a sample of that many (drawn with ``seed``) is
    ranked: every model ranks the same users, and the cost stays that of the sample.
    """
    truth = holdout_truth(interactions, windows)
    if not truth:
        raise ValueError("the holdout has no user known in training: nothing to evaluate")
    users = evaluated_users(truth, max_users, seed)
    truth = {user: truth[user] for user in users}
    train = before(interactions, windows.holdout_start)
    popularity = PopularityCandidates().fit(train)
    item_pop = popularity.interactions.item_popularity()
    catalog_size = int(interactions["item_id"].nunique())
    n = max(max(KS), k)
    rankings: dict[str, dict[str, list[str]]] = {
        "popularity": {u: r[0] for u, r in popularity.recommend(users, n).items()},
    }
    first = next(iter(models.values()))
    rankings["als"] = {u: r[0] for u, r in first.generator("als").recommend(users, n).items()}
    for name, model in models.items():
        rankings[name] = pipeline_rankings(
            model, users, store, windows.holdout_start, n, service
        )
    rows = []
    for name, ranking in rankings.items():
        for at in sorted({*KS, k}):
            values = evaluate_rankings(ranking, truth, at, catalog_size, item_pop)
            rows.append({"model": name, "k": at, **{
                key.replace(f"_at_{at}", "_at_k"): val for key, val in values.items()
                if key != "n_users"
            }})
    table = pd.DataFrame(rows)
    logger.info("evaluation on %d users:\n%s", len(users),
                table[table["k"] == k].to_string(index=False))
    return EvaluationReport(table=table, k=k, n_users=len(users))



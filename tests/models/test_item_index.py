"""Item indexes: the exact one is brute force; faiss IVF keeps most of its top items."""

import numpy as np
import pandas as pd

from recsys.models.als import ALSCandidates
from recsys.models.item_index import ExactIndex, IVFIndex, build_index
from recsys.models.popularity import PopularityCandidates
from recsys.models.retrieval import CandidateRetriever
from recsys.models.union import UnionCandidates
from tests.item_tables import item_table


def clustered_factors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Item factors around 50 centres, as ALS factors of a catalog with tastes look."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    return (centres[rng.integers(0, 50, n)] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def test_exact_index_is_brute_force_without_excluded_items() -> None:
    factors = clustered_factors(500)
    user = np.random.default_rng(1).normal(size=16).astype(np.float32)
    exclude = np.array([3, 7, 11])
    scores = factors @ user
    scores[exclude] = -np.inf
    expected = np.argsort(-scores, kind="stable")[:20]
    cols, values = ExactIndex(factors).search(user, 20, exclude)
    assert cols.tolist() == expected.tolist()
    np.testing.assert_allclose(values, scores[expected], rtol=1e-6)


def test_ivf_index_recalls_the_exact_top_items() -> None:
    factors = clustered_factors(20_000)
    exact, approximate = ExactIndex(factors), IVFIndex(factors)
    users = np.random.default_rng(2).normal(size=(50, 16)).astype(np.float32)
    exclude = np.arange(0, 20_000, 97)
    recall = []
    for user in users:
        truth = set(exact.search(user, 50, exclude)[0].tolist())
        got, scores = approximate.search(user, 50, exclude)
        assert not set(got.tolist()) & set(exclude.tolist())
        assert np.all(np.diff(scores) <= 1e-6)  # best first
        recall.append(len(truth & set(got.tolist())) / 50)
    assert np.mean(recall) >= 0.9


def test_build_index_switches_at_the_catalog_size() -> None:
    factors = clustered_factors(2_000)
    assert isinstance(build_index(factors, approximate_from=2_001), ExactIndex)
    assert isinstance(build_index(factors, approximate_from=2_000), IVFIndex)


def test_retriever_with_either_index_returns_the_same_candidates() -> None:
    items = item_table(n=12)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"user_id": [f"u{rng.integers(0, 30)}" for _ in range(200)],
                          "item_id": [f"i{rng.integers(0, 12)}" for _ in range(200)]})
    union = UnionCandidates([PopularityCandidates(name="popularity"),
                             ALSCandidates(factors=4, iterations=5, num_threads=1)],
                            n_per_generator=5).fit(frame.drop_duplicates())
    exact = CandidateRetriever(union, items, approximate_from=10**6).retrieve("u1")
    approximate = CandidateRetriever(union, items, approximate_from=1).retrieve("u1")
    assert len(exact) and exact.rows.tolist() == approximate.rows.tolist()
    np.testing.assert_allclose(exact.columns["als_rank"], approximate.columns["als_rank"])

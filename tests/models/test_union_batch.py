"""The union's batched candidate frame equals the per-user merge that defines it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.models.als import ALSCandidates
from recsys.models.item_to_item import ItemKNNCandidates
from recsys.models.popularity import PopularityCandidates
from recsys.models.union import UnionCandidates, merge_lists


def per_user_candidates(union: UnionCandidates, user_ids: list[str]) -> pd.DataFrame:
    """Each generator's ``recommend`` merged user by user with :func:`merge_lists`."""
    n, names = union.n_per_generator, union.names
    recs = [g.recommend(user_ids, n) for g in union.generators]
    rows = []
    for user in sorted(set(user_ids)):
        lists = []
        for per_user in recs:
            items, scores = per_user.get(user, ([], np.empty(0)))
            lists.append((np.asarray(items, dtype=str), np.asarray(scores, np.float64),
                          np.arange(1, len(items) + 1)) if items else None)
        keys, columns = merge_lists(names, lists, n)
        if not len(keys):
            continue
        best = np.min([columns[f"{name}_rank"] for name in names], axis=0)
        for j in np.lexsort((keys, best)):
            rows.append({"user_id": user, "item_id": str(keys[j]),
                         **{c: v[j] for c, v in columns.items()}})
    frame = pd.DataFrame(rows)
    for name in names:
        frame[f"{name}_rank"] = frame[f"{name}_rank"].astype(np.int64)
    return frame


def test_batched_candidates_equal_the_per_user_merge() -> None:
    rng = np.random.default_rng(3)
    n_events = 3000
    frame = pd.DataFrame({
        "user_id": [f"u{u}" for u in rng.integers(0, 120, n_events)],
        "item_id": [f"i{int(i)}" for i in rng.zipf(1.3, n_events) % 300],
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
    })
    union = UnionCandidates([
        PopularityCandidates(),
        ALSCandidates(factors=8, iterations=5, num_threads=1),
        ItemKNNCandidates(neighbours=20),
    ], n_per_generator=15).fit(frame)
    users = [f"u{u}" for u in range(125)] + ["u3"]  # unknown users and a repeated one
    got = union.candidates(users)
    want = per_user_candidates(union, users)
    assert got["user_id"].nunique() == frame["user_id"].nunique()
    pd.testing.assert_frame_equal(got.astype({"item_id": str}), want.astype({"item_id": str}),
                                  check_dtype=False)
    assert got.dtypes.drop(["user_id", "item_id"]).isin(
        [np.dtype(np.float64), np.dtype(np.int64)]).all()

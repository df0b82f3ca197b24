"""Recency-weighted item-to-item scoring: the latest items of a user speak loudest."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.models.generator import CandidateGenerator
from recsys.models.item_to_item import EASECandidates, ItemKNNCandidates, recency_weighted
from recsys.models.matrix import InteractionMatrix

T0 = pd.Timestamp("2026-02-01", tz="UTC")


def history(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """(user, item, minute) → an interaction frame."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "minute"])
    frame["timestamp"] = T0 + pd.to_timedelta(frame.pop("minute"), unit="min")
    return frame


def test_weights_halve_every_half_life_counted_in_items() -> None:
    frame = history([("u", "a", 0), ("u", "b", 1), ("u", "c", 2), ("v", "a", 5),
                     ("u", "a", 3)])  # u touches a again last: a is u's latest item
    matrix = InteractionMatrix.from_frame(frame)
    weighted = recency_weighted(frame, matrix, half_life_events=1.0).toarray()
    row_u = dict(zip(matrix.item_ids, weighted[matrix.user_indices(["u"])[0]], strict=True))
    # a appears twice (matrix weight 2) and is the latest; then c, then b.
    assert row_u == pytest.approx({"a": 2.0, "c": 0.5, "b": 0.25})
    row_v = weighted[matrix.user_indices(["v"])[0]]
    assert row_v.tolist() == [1.0, 0.0, 0.0]


def sequence_world() -> pd.DataFrame:
    """Items come in pairs (x0 → y0, x1 → y1, ...): whoever takes x_k takes y_k next.

    The probe user took x0 long ago and x1 just now; with recency the next item is y1.
    """
    rows = []
    for user in range(40):
        k = user % 4
        rows += [(f"u{user}", f"x{k}", 10 * k), (f"u{user}", f"y{k}", 10 * k + 1)]
    rows += [("probe", "x0", 0), ("probe", "z", 1), ("probe", "x1", 50)]
    return history(rows)


@pytest.mark.parametrize("generator", [EASECandidates, ItemKNNCandidates])
def test_recency_puts_the_follow_up_of_the_latest_item_first(
    generator: type[CandidateGenerator], tmp_path: Path
) -> None:
    frame = sequence_world()
    kwargs = {"l2": 1.0} if generator is EASECandidates else {"neighbours": 5}
    plain = generator(**kwargs).fit(frame)
    recent = generator(**kwargs, half_life_events=0.5).fit(frame)
    assert recent.recommend(["probe"], 1)["probe"][0] == ["y1"]
    plain_scores = dict(zip(*plain.recommend(["probe"], 3)["probe"], strict=True))
    assert plain_scores["y0"] == pytest.approx(plain_scores["y1"])  # no order without recency
    recent.save(tmp_path)
    loaded = CandidateGenerator.load(tmp_path)
    assert loaded.half_life_events == 0.5
    a, b = recent.recommend(["probe"], 3)["probe"], loaded.recommend(["probe"], 3)["probe"]
    assert a[0] == b[0] and np.allclose(a[1], b[1])


def test_half_life_must_be_positive_and_needs_timestamps() -> None:
    with pytest.raises(ValueError, match="positive"):
        EASECandidates(half_life_events=0)
    with pytest.raises(ValueError, match="timestamp"):
        EASECandidates(half_life_events=2).fit(pd.DataFrame({"user_id": ["u"], "item_id": ["a"]}))

"""Assignment of users to A/B arms: sticky, weighted, independent between experiments."""

import pytest

from serving.experiments import ExperimentConfigError, assign, validate

USERS = [f"u{i}" for i in range(20_000)]


def test_assignment_is_sticky() -> None:
    arms = validate({"e": {"champion": 1, "challenger": 1}})["e"]
    assert [assign("e", u, arms) for u in USERS[:500]] == [assign("e", u, arms)
                                                            for u in USERS[:500]]


def test_traffic_follows_the_weights() -> None:
    arms = validate({"e": {"champion": 3, "challenger": 1}})["e"]
    share = sum(assign("e", u, arms) == "challenger" for u in USERS) / len(USERS)
    assert abs(share - 0.25) < 0.015  # 5 standard errors at 20k users


def test_experiments_split_users_independently() -> None:
    arms = validate({"a": {"x": 1, "y": 1}})["a"]
    in_a = [assign("a", u, arms) == "x" for u in USERS]
    in_b = [assign("b", u, arms) == "x" for u in USERS]
    both = sum(a and b for a, b in zip(in_a, in_b, strict=True)) / len(USERS)
    assert abs(both - 0.25) < 0.015


@pytest.mark.parametrize("bad", [{"e": {}}, {"e": {"champion": 0}}, {"e": {"a": 1, "b": -2}}])
def test_invalid_experiments_are_rejected(bad: dict) -> None:
    with pytest.raises(ExperimentConfigError):
        validate(bad)

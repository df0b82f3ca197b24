"""The user model: position-based examination, clicks and purchases from true preference,
and leaving after poor lists. Plain numpy, shared by the HTTP runs and the fast replications.

Examination follows the position-based model (PBM): the item at position k (from 0) is looked
at with probability ``examine_top * (k + 1) ** -examine_decay``; an examined item is clicked
with probability ``click_scale * preference`` and bought after a click with the synthetic
world's funnel probabilities. A list without a click ends the session with probability
``leave_after_poor``; a session asks for at most ``lists_per_session`` lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.events.synthetic import World, purchase_probability


@dataclass(frozen=True)
class Behaviour:
    """How simulated people treat a list (the module docstring gives the model).

    Parameters
    ----------
    examine_top, examine_decay : float
        Examination probability of position k (from 0) is
        ``examine_top * (k + 1) ** -examine_decay``.
    click_scale : float
        An examined item is clicked with probability ``click_scale * preference``.
    leave_after_poor : float
        Chance of ending the session after a list without a click.
    lists_per_session : int
        Most lists asked for in one session.
    """

    examine_top: float = 0.95
    examine_decay: float = 0.8
    click_scale: float = 0.8
    leave_after_poor: float = 0.6
    lists_per_session: int = 3

    def examination(self, k: int) -> np.ndarray:
        return self.examine_top * (np.arange(k) + 1.0) ** -self.examine_decay


def react(preference: np.ndarray, rng: np.random.Generator,
          behaviour: Behaviour) -> tuple[np.ndarray, np.ndarray]:
    """Clicks and purchases (boolean arrays shaped like ``preference``, the true preference
    of each shown item, one list per row, positions along the last axis)."""
    examined = rng.random(preference.shape) < behaviour.examination(preference.shape[-1])
    clicked = examined & (rng.random(preference.shape) < behaviour.click_scale * preference)
    bought = clicked & (rng.random(preference.shape) < purchase_probability(preference))
    return clicked, bought


def list_preferences(world: World, lists: dict[str, list[str]],
                     users: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """For each user, the true preference and price of each item of their list (lists
    padded to the longest with preference 0)."""
    k = max(len(v) for v in lists.values())
    prefs, prices = np.zeros((len(users), k)), np.zeros((len(users), k))
    price = dict(zip(world.items["item_id"], world.items["price"], strict=True))
    for row, user in enumerate(users):
        items = lists[user]
        if items:
            prefs[row, :len(items)] = world.preference(np.array([user] * len(items)),
                                                       np.array(items))
            prices[row, :len(items)] = [price[i] for i in items]
    return prefs, prices

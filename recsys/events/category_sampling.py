"""Sampling a synthetic world's views without its users x items matrix (worlds beyond
:attr:`recsys.events.synthetic.WorldConfig.dense_pairs`)."""

from __future__ import annotations

import numpy as np

#: Views handled per step of the category sampler (bounds its temporary arrays).
_CHUNK = 1_000_000


def pair_match(taste: np.ndarray, item_cats: np.ndarray, users: np.ndarray,
               items: np.ndarray) -> np.ndarray:
    """The taste match of each (user, item) pair: 1 for an indifferent user, up to
    n_categories for a perfect fit (``synthetic``'s users x items match, pair by pair)."""
    out = np.empty(len(users))
    for start in range(0, len(users), _CHUNK):
        part = slice(start, start + _CHUNK)
        out[part] = np.einsum("ij,ij->i", taste[users[part]], item_cats[items[part]])
    return taste.shape[1] * out


def choose_items_by_category(
    rng: np.random.Generator,
    view_user: np.ndarray,
    view_ts: np.ndarray,
    taste: np.ndarray,
    item_cats: np.ndarray,
    appeal: np.ndarray,
    created: np.ndarray,
) -> np.ndarray:
    """The view distribution of :mod:`recsys.events.synthetic` without the users x items matrix.

    p(item | user) ∝ (n_cat Σ_c taste[u, c] cats[i, c] + 0.02) x appeal[i] is a mixture: a
    component per category c of weight n_cat taste[u, c] Σ_i cats[i, c] appeal[i], items
    within it ∝ cats[i, c] appeal[i], and a background of weight 0.02 Σ_i appeal[i], items ∝
    appeal[i]. Each view draws its component, then its item from that component's CDF
    (one per category, n_items long); items not yet created at view time are redrawn.
    """
    n_cat = taste.shape[1]
    within = np.vstack([(item_cats * appeal[:, None]).T, appeal[None, :]])  # (n_cat+1, items)
    cdfs = np.cumsum(within, axis=1)
    mass = cdfs[:, -1].copy()
    cdfs /= mass[:, None]
    mass[:n_cat] *= n_cat
    mass[n_cat] *= 0.02
    chosen = np.empty(len(view_user), dtype=np.int64)
    pending = np.arange(len(view_user))
    for _ in range(20):
        for start in range(0, len(pending), _CHUNK):
            part = pending[start:start + _CHUNK]
            weights = np.hstack([taste[view_user[part]], np.ones((len(part), 1))]) * mass
            cum = np.cumsum(weights, axis=1)
            draw = rng.random(len(part)) * cum[:, -1]
            component = np.minimum((cum < draw[:, None]).sum(axis=1), n_cat)
            uniform = rng.random(len(part))
            for c in np.unique(component).tolist():
                at = component == c
                chosen[part[at]] = np.searchsorted(cdfs[c], uniform[at], side="right")
        chosen[pending] = np.minimum(chosen[pending], len(appeal) - 1)
        pending = pending[created[chosen[pending]] > view_ts[pending]]
        if len(pending) == 0:
            break
    chosen[pending] = int(np.argmin(created))
    return chosen

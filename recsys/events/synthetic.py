"""A seeded synthetic world: catalog, users, event history and the ground truth behind them.

This is the platform's embedded default data. Items have a Zipf-like popularity, a latent
quality and 1-2 categories; users have a Dirichlet taste over categories (shaped by their
age/gender group) and a heavy-tailed activity. Sessions follow a daily rhythm on a device;
users view items drawn by taste x popularity x quality and move down the funnel view ->
click -> add_to_cart -> purchase (and sometimes rate) with probabilities driven by the true
preference, which :meth:`World.preference` exposes so that later stages can simulate users
reacting to recommendations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from recsys.events.category_sampling import choose_items_by_category, pair_match
from recsys.events.schema import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS

logger = logging.getLogger(__name__)

CATEGORY_NAMES = (
    *("action", "comedy", "drama", "documentary", "horror", "romance", "sci-fi", "thriller"),
    *("animation", "family", "music", "sports", "crime", "fantasy", "history", "mystery"),
)
DEVICES = ("mobile", "desktop", "tv")
PAGES = ("home", "search", "category", "item", "recommendations")
OCCUPATIONS = ("student", "engineer", "artist", "teacher", "healthcare", "sales", "retired")
REGIONS = ("north", "south", "east", "west", "central")
# Relative activity per UTC hour: quiet nights, a lunch bump and an evening peak.
_HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 9, 8, 6, 6, 7, 8, 10, 12, 13, 12, 8, 4], dtype=float
)
_DAY = 86_400.0


@dataclass(frozen=True)
class WorldConfig:
    """Size and randomness of a synthetic world; ``end`` defaults to today's UTC midnight."""

    n_users: int = 2000
    n_items: int = 1000
    n_categories: int = 12
    days: int = 60
    end: datetime | None = None
    seed: int = 42
    sessions_per_user: float = 8.0
    #: How far the time of day moves taste: items whose main category has an odd index gain
    #: this share of their appeal and match in the evening and night (18:00-06:00 UTC) and
    #: lose it by day, the others the reverse (0: no effect; below 1).
    evening_taste: float = 0.0
    #: Largest users x items product sampled through a dense taste-match matrix (the seeded
    #: worlds of the demo and the tests keep their exact events); a larger world samples the
    #: same distribution as a mixture over categories, in memory linear in users + items.
    dense_pairs: int = 50_000_000

    def __post_init__(self) -> None:
        if min(self.n_users, self.n_items, self.days) < 1 or self.sessions_per_user <= 0:
            raise ValueError(f"world sizes must be positive: {self}")
        if not 0 <= self.evening_taste < 1:
            raise ValueError(f"evening_taste must be in [0, 1), got {self.evening_taste}")
        if not 2 <= self.n_categories <= len(CATEGORY_NAMES):
            raise ValueError(f"n_categories must be in [2, {len(CATEGORY_NAMES)}]")
        if self.end is not None and self.end.tzinfo is None:
            raise ValueError("WorldConfig.end must be timezone-aware")

    def resolved_end(self) -> datetime:
        """The exclusive end of the event window, in UTC."""
        if self.end is not None:
            return self.end.astimezone(UTC)
        now = datetime.now(UTC)
        return datetime(now.year, now.month, now.day, tzinfo=UTC)


@dataclass
class World:
    """The generated frames (``items``, ``users``, ``events``) plus their ground truth."""

    config: WorldConfig
    start: datetime
    end: datetime
    items: pd.DataFrame
    users: pd.DataFrame
    events: pd.DataFrame
    user_taste: np.ndarray  # (n_users, n_categories), rows sum to 1
    item_quality: np.ndarray  # (n_items,), standard normal
    item_categories: np.ndarray  # (n_items, n_categories), rows sum to 1
    item_popularity: np.ndarray  # (n_items,), sums to 1
    _users: pd.Index = field(init=False, repr=False)
    _items: pd.Index = field(init=False, repr=False)
    _match: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._users = pd.Index(self.users["user_id"])
        self._items = pd.Index(self.items["item_id"])
        dense = len(self._users) * len(self._items) <= self.config.dense_pairs
        self._match = _taste_match(self.user_taste, self.item_categories) if dense else None

    def preference(self, user_ids: object, item_ids: object,
                   hour: float | None = None) -> np.ndarray:
        """True probability that each user engages with each item when shown it.

        Parameters
        ----------
        user_ids, item_ids : array-like of str
            Ids as in the frames, broadcast with numpy rules (``users[:, None]`` with
            ``items[None, :]`` gives a user x item matrix).
        hour : float, optional
            UTC hour of the showing; matters when ``config.evening_taste`` is set (None:
            the day's average).

        Returns
        -------
        numpy.ndarray
            Probabilities in (0, 1) of the broadcast shape.
        """
        users, items = np.broadcast_arrays(np.asarray(user_ids), np.asarray(item_ids))
        u, i = _lookup(self._users, users, "user"), _lookup(self._items, items, "item")
        match = (self._match[u, i] if self._match is not None
                 else pair_match(self.user_taste, self.item_categories, u, i))
        if hour is not None:
            match = match * _time_factor(self.item_categories.argmax(axis=1)[i],
                                         np.full(i.shape, hour), self.config.evening_taste)
        return _preference(match, self.item_quality[i]).reshape(users.shape)


def generate_world(cfg: WorldConfig | None = None) -> World:
    """Generate a synthetic world; the same config always gives identical frames.

    Parameters
    ----------
    cfg : WorldConfig, optional
        Sizes and seed; the defaults give 2000 users, 1000 items and 60 days.

    Returns
    -------
    World
        Items, users and events in the :mod:`recsys.events.schema` DataFrame forms.
    """
    cfg = cfg or WorldConfig()
    rng = np.random.default_rng(cfg.seed)
    end = cfg.resolved_end()
    start = end - timedelta(days=cfg.days)
    n_i = cfg.n_items

    item_cats, categories, primary = _item_categories(rng, n_i, cfg.n_categories)
    quality = rng.standard_normal(n_i)
    popularity = 1.0 / (rng.permutation(n_i) + 1.0) ** 1.1
    popularity /= popularity.sum()
    # Most of the catalog predates the window (offsets in seconds from its start).
    is_new = rng.random(n_i) < 0.15
    created = np.where(is_new, rng.uniform(0, cfg.days - 0.5, n_i), -rng.uniform(1, 365, n_i))
    created *= _DAY
    price = np.round(rng.lognormal(np.log(12.0), 0.8, n_i), 2)
    users, taste = _users(rng, cfg.n_users, cfg.n_categories)

    activity = rng.lognormal(0.0, 1.0, cfg.n_users)
    session_user = np.repeat(
        np.arange(cfg.n_users), rng.poisson(cfg.sessions_per_user * activity / activity.mean())
    )
    n_s = len(session_user)
    if n_s == 0:
        raise ValueError(f"{cfg} produced no sessions; raise n_users or sessions_per_user")
    hour = rng.choice(24, n_s, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    session_start = rng.integers(0, cfg.days, n_s) * _DAY + (hour + rng.random(n_s)) * 3600.0
    home_device = rng.choice(len(DEVICES), cfg.n_users, p=[0.55, 0.3, 0.15])
    roaming = rng.random(n_s) >= 0.8
    device = np.where(roaming, rng.integers(0, len(DEVICES), n_s), home_device[session_user])

    views = rng.geometric(0.25, n_s)
    view_session = np.repeat(np.arange(n_s), views)
    gaps = rng.exponential(45.0, len(view_session))
    elapsed, first = np.cumsum(gaps), np.r_[0, np.cumsum(views)[:-1]]
    view_ts = session_start[view_session] + elapsed - np.repeat(elapsed[first] - gaps[first], views)
    view_user = session_user[view_session]
    appeal = popularity * np.exp(0.5 * quality)
    view_hour = (view_ts % _DAY) / 3600.0  # the window starts at a UTC midnight
    view_item = np.empty(len(view_user), dtype=np.int64)
    dense = cfg.n_users * n_i <= cfg.dense_pairs
    match = _taste_match(taste, item_cats) if dense else None
    parts = (False, True) if cfg.evening_taste else (None,)  # None: one draw for every view
    for evening in parts:  # the appeal of each part of the day
        views = (np.arange(len(view_user)) if evening is None
                 else np.flatnonzero(_is_evening(view_hour) == evening))
        hour = np.full(n_i, 20.0 if evening else 12.0)  # (no tilt without a shift)
        tilt = _time_factor(primary, hour, cfg.evening_taste)
        if match is not None:
            view_item[views] = _choose_items(rng, view_user[views], view_ts[views],
                                             match * tilt, appeal * tilt, created)
        else:  # the same weights: the tilt scales each item's categories and appeal
            view_item[views] = choose_items_by_category(
                rng, view_user[views], view_ts[views], taste, item_cats * tilt[:, None],
                appeal * tilt, created)

    n_v = len(view_item)
    view_match = (match[view_user, view_item] if match is not None
                  else pair_match(taste, item_cats, view_user, view_item))
    pref = _preference(view_match * _time_factor(primary[view_item], view_hour,
                                                 cfg.evening_taste),
                       quality[view_item])
    click = rng.random(n_v) < 0.8 * pref
    cart = click & (rng.random(n_v) < cart_probability(pref))
    buy = cart & (rng.random(n_v) < buy_probability(pref))
    rate = (buy & (rng.random(n_v) < 0.6)) | (click & ~buy & (rng.random(n_v) < 0.08))
    rating = np.clip(np.round(1 + 4 * pref + rng.normal(0, 0.75, n_v)), 1, 5)
    t_click = view_ts + 1 + rng.exponential(8.0, n_v)
    t_cart = t_click + 2 + rng.exponential(30.0, n_v)
    t_buy = t_cart + 5 + rng.exponential(90.0, n_v)
    t_rate = np.where(buy, t_buy, t_click) + 10 + rng.exponential(600.0, n_v)
    page = rng.choice(len(PAGES), n_v, p=[0.3, 0.2, 0.15, 0.15, 0.2])
    none = np.full(n_v, np.nan)
    steps = [
        ("view", np.ones(n_v, dtype=bool), view_ts, none),
        ("click", click, t_click, none),
        ("add_to_cart", cart, t_cart, none),
        ("purchase", buy, t_buy, price[view_item]),
        ("rate", rate, t_rate, rating),
    ]
    context = [
        f'{{"device":"{DEVICES[d]}","page":"{PAGES[p]}","session_id":"s{cfg.seed}-{s}"}}'
        for d, p, s in zip(device[view_session], page, view_session, strict=True)
    ]
    events = _assemble(cfg, start, steps, view_user, view_item, context)
    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(n_i)],
            "title": [f"Item {n} ({CATEGORY_NAMES[c]})" for n, c in enumerate(primary)],
            "categories": categories,
            "price": price,
            "in_stock": rng.random(n_i) >= 0.05,
            "created_at": _to_utc(start, np.round(created * 1000)),
        },
        columns=ITEM_COLUMNS,
    )
    logger.info("synthetic world: %d users, %d items, %d events", cfg.n_users, n_i, len(events))
    return World(cfg, start, end, items, users, events, taste, quality, item_cats, popularity)


def _item_categories(
    rng: np.random.Generator, n_items: int, n_cat: int
) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
    """Membership weights (primary 0.7 / secondary 0.3), category names, primary index."""
    primary = rng.choice(n_cat, n_items, p=rng.dirichlet(np.full(n_cat, 3.0)))
    secondary = (primary + rng.integers(1, n_cat, n_items)) % n_cat
    two = rng.random(n_items) < 0.4
    weights = np.zeros((n_items, n_cat))
    weights[np.arange(n_items), primary] = np.where(two, 0.7, 1.0)
    weights[np.flatnonzero(two), secondary[two]] = 0.3
    names = [
        [CATEGORY_NAMES[p], CATEGORY_NAMES[s]] if t else [CATEGORY_NAMES[p]]
        for p, s, t in zip(primary, secondary, two, strict=True)
    ]
    return weights, names, primary


def _users(rng: np.random.Generator, n_users: int, n_cat: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Demographics, and a Dirichlet taste whose prior depends on the age/gender group."""
    age = np.clip(np.round(rng.normal(34, 12, n_users)), 16, 80).astype(np.int64)
    gender = rng.choice(np.array(["F", "M", "X"], dtype=object), n_users, p=[0.49, 0.49, 0.02])
    group = 2 * ((age >= 30).astype(int) + (age >= 50)) + (gender == "M")
    # Concentrations below 1 make tastes peaked: most users love a few categories.
    alpha = 0.3 * (0.5 + n_cat * rng.dirichlet(np.ones(n_cat), 6)[group])
    draws = rng.gamma(alpha) + 1e-12
    users = pd.DataFrame(
        {
            "user_id": [f"u{n}" for n in range(n_users)],
            "age": pd.array(age, dtype="Int64"),
            "gender": gender,
            "occupation": rng.choice(np.array(OCCUPATIONS, dtype=object), n_users),
            "region": rng.choice(np.array(REGIONS, dtype=object), n_users),
        },
        columns=USER_COLUMNS,
    )
    return users, draws / draws.sum(axis=1, keepdims=True)


def _taste_match(taste: np.ndarray, item_cats: np.ndarray) -> np.ndarray:
    """(n_users, n_items): 1 for an indifferent user, up to n_categories for a perfect fit."""
    return taste.shape[1] * (taste @ item_cats.T)


def _is_evening(hour: np.ndarray) -> np.ndarray:
    return (hour >= 18) | (hour < 6)


def _time_factor(primary: np.ndarray, hour: np.ndarray, strength: float) -> np.ndarray:
    """Multiplier of an item's appeal and match at a UTC hour (see ``evening_taste``)."""
    favoured = (primary % 2 == 1) == _is_evening(hour)
    return np.where(favoured, 1.0 + strength, 1.0 - strength)


def _preference(match: np.ndarray, quality: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(1.5 - 1.2 * np.log(match + 0.05) - 0.8 * quality))


def cart_probability(preference: np.ndarray) -> np.ndarray:
    """Chance that a click on an item of true ``preference`` (in [0, 1]) adds it to the cart."""
    return 0.05 + 0.4 * preference


def buy_probability(preference: np.ndarray) -> np.ndarray:
    """Chance that an item of true ``preference`` in the cart is bought."""
    return 0.3 + 0.4 * preference


def purchase_probability(preference: np.ndarray) -> np.ndarray:
    """Chance that a click on an item of true ``preference`` ends in a purchase (cart, then
    buy): the funnel of the synthetic world, for models of users acting on it."""
    return cart_probability(preference) * buy_probability(preference)


def _choose_items(
    rng: np.random.Generator,
    view_user: np.ndarray,
    view_ts: np.ndarray,
    match: np.ndarray,
    appeal: np.ndarray,
    created: np.ndarray,
) -> np.ndarray:
    """One item per view from p(item | user) ∝ (taste match + 0.02) x popularity x quality.

    The per-user CDFs are laid end to end (user k spans (k, k+1]) so that one
    ``searchsorted`` samples every view; items not yet created at view time are redrawn.
    """
    n_items = match.shape[1]
    cdf = np.cumsum((match + 0.02) * appeal, axis=1)
    flat = (cdf / cdf[:, -1:] + np.arange(len(match))[:, None]).ravel()
    chosen = np.empty(len(view_user), dtype=np.int64)
    pending = np.arange(len(view_user))
    for _ in range(20):
        users = view_user[pending]
        picks = np.searchsorted(flat, users + rng.random(len(pending)), side="right")
        chosen[pending] = picks = np.clip(picks - users * n_items, 0, n_items - 1)
        pending = pending[created[picks] > view_ts[pending]]
        if len(pending) == 0:
            break
    # Practically unreachable; the oldest item always exists.
    chosen[pending] = int(np.argmin(created))
    return chosen


def _assemble(
    cfg: WorldConfig,
    start: datetime,
    steps: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    view_user: np.ndarray,
    view_item: np.ndarray,
    context: list[str],
) -> pd.DataFrame:
    """Stack the funnel steps into one time-ordered EVENT_COLUMNS frame."""
    rows = np.concatenate([np.flatnonzero(mask) for _, mask, _, _ in steps])
    kinds = np.concatenate([np.full(mask.sum(), k) for k, (_, mask, _, _) in enumerate(steps)])
    # Millisecond resolution; the few events spilling past the window end are pinned
    # just before it so that the window stays half-open.
    millis = np.round(np.concatenate([ts[mask] for _, mask, ts, _ in steps]) * 1000)
    millis = np.minimum(millis, cfg.days * _DAY * 1000 - 1)
    values = np.concatenate([value[mask] for _, mask, _, value in steps])
    order = np.lexsort((kinds, millis))
    rows, kinds, millis, values = rows[order], kinds[order], millis[order], values[order]
    names = np.array([name for name, _, _, _ in steps], dtype=object)
    user_ids = np.array([f"u{n}" for n in range(cfg.n_users)], dtype=object)
    item_ids = np.array([f"i{n}" for n in range(cfg.n_items)], dtype=object)
    frame = {
        "event_id": [f"syn-{cfg.seed}-{n}" for n in range(len(rows))],
        "user_id": user_ids[view_user[rows]],
        "item_id": item_ids[view_item[rows]],
        "event_type": names[kinds],
        "value": values,
        "timestamp": _to_utc(start, millis),
        "context": np.array(context, dtype=object)[rows],
        "rec_id": None,
        "position": pd.array([pd.NA] * len(rows), dtype="Int64"),
    }
    return pd.DataFrame(frame, columns=EVENT_COLUMNS)


def _to_utc(start: datetime, millis: np.ndarray) -> pd.DatetimeIndex:
    offsets = pd.to_timedelta(millis.astype(np.int64), unit="ms")
    return (pd.Timestamp(start) + offsets).as_unit("ns")


def _lookup(index: pd.Index, ids: np.ndarray, kind: str) -> np.ndarray:
    positions = index.get_indexer(ids.ravel().astype(object))
    if (positions < 0).any():
        unknown = sorted({str(v) for v in ids.ravel()[positions < 0]})[:5]
        raise KeyError(f"unknown {kind} id(s) {unknown} (not in this synthetic world)")
    return positions

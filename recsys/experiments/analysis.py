"""The results of an experiment: per variant and per day, from impressions and attributed
outcomes, with the SRM check, the sequential test of the primary metric and the guardrails.

The unit is the user (the unit of randomization): per user, at each daily look, the
impressions so far and the clicks, purchases and revenue attributed to them. A user's CTR
is clicks / impressions, conversion is "bought at least once", revenue is the sum of
purchase values. Looks are cumulative: look k holds everything up to the end of the k-th UTC
day from the first impression (its ``day``); the last look is today's so far, and it runs to
the day of the latest outcome even when no list was shown that day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from recsys.events.impressions import attribute
from recsys.experiments.model import Experiment
from recsys.experiments.statistics import (
    SRM_ALPHA,
    cuped,
    rate_increase_p_value,
    sequential_test,
    srm_p_value,
)

CLICKS = ("click",)
PURCHASES = ("purchase",)


@dataclass
class Analysis:
    """What a look found; ``daily`` has one row per look and variant, ``lift`` one per look;
    both carry the look's ``day`` (a UTC date)."""

    experiment_id: str
    daily: pd.DataFrame
    lift: pd.DataFrame
    srm_p: float
    guardrail_breaches: list[str] = field(default_factory=list)

    @property
    def srm(self) -> bool:
        return self.srm_p < SRM_ALPHA

    @property
    def users(self) -> dict[str, int]:
        if self.daily.empty:
            return {}
        last = self.daily[self.daily["look"] == self.daily["look"].max()]
        return dict(zip(last["variant"], last["users"].astype(int), strict=True))

    @property
    def final(self) -> dict[str, object]:
        """The last look's lift and verdict (empty before the first)."""
        return {} if self.lift.empty else self.lift.iloc[-1].to_dict()


def user_values(metric: str, impressions: np.ndarray, clicks: np.ndarray,
                purchases: np.ndarray, revenue: np.ndarray) -> np.ndarray:
    """Per-user value of ``metric`` (users without impressions count 0 CTR)."""
    if metric == "ctr":
        return np.divide(clicks, impressions, out=np.zeros(len(clicks)), where=impressions > 0)
    if metric == "conversion":
        return (purchases > 0).astype(float)
    return revenue.astype(float)


def sufficient(look: int, variants: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """Per variant: sum, sum of squares and count of ``values`` at ``look``."""
    frame = pd.DataFrame({"variant": variants, "v": values})
    grouped = frame.groupby("variant")["v"]
    out = pd.DataFrame({"sum": grouped.sum(), "sum_sq": grouped.apply(lambda v: (v ** 2).sum()),
                        "count": grouped.size()}).reset_index()
    out.insert(0, "look", look)
    return out


def analyse(experiment: Experiment, impressions: pd.DataFrame, events: pd.DataFrame,
            window: timedelta = timedelta(hours=24),
            pre_events: pd.DataFrame | None = None) -> Analysis:
    """Results of ``experiment`` from the impression log and the event log."""
    mine = impressions[impressions["experiment_id"] == experiment.experiment_id]
    lists = mine.drop_duplicates("rec_id").copy()
    start = lists["timestamp"].min().floor("D") if len(lists) else pd.Timestamp.now(tz="UTC")
    lists["look"] = ((lists["timestamp"] - start) // pd.Timedelta(days=1)).astype(int) + 1
    outcomes = attribute(events[events["timestamp"] >= start], mine, window)
    outcomes = outcomes[outcomes["experiment_id"] == experiment.experiment_id].copy()
    outcomes["look"] = ((outcomes["timestamp"] - start) // pd.Timedelta(days=1)).astype(int) + 1
    covariate = _pre_period(pre_events, experiment.primary_metric)
    names = [v.name for v in experiment.variants]
    rows, stats_rows = [], []
    last = max(int(lists["look"].max()), int(outcomes["look"].max()) if len(outcomes) else 0
               ) if len(lists) else 0
    for look in range(1, last + 1):
        users, seen = _users_at(lists, outcomes, look)
        if users.empty:
            continue
        values = user_values(experiment.primary_metric, users["impressions"].to_numpy(),
                             users["clicks"].to_numpy(), users["purchases"].to_numpy(),
                             users["revenue"].to_numpy())
        if covariate is not None:
            values = cuped(values, users.index.map(covariate).fillna(0).to_numpy(float))
        stats_rows.append(sufficient(look, users["variant"].to_numpy(), values))
        for name in names:
            part, shown = users[users["variant"] == name], seen[seen["variant"] == name]
            rows.append(_variant_row(look, name, part, shown))
    daily = pd.DataFrame(rows)
    looks = pd.concat(stats_rows, ignore_index=True) if stats_rows else pd.DataFrame()
    lift = pd.DataFrame(columns=["look", "lift", "ci_lower", "ci_upper", "significant"])
    treatment = names[1]
    if len(looks) and set(looks["variant"]) >= {names[0], treatment}:
        lift = sequential_test(looks, names[0], treatment, final_total(experiment),
                               experiment.alpha)
    if len(daily):
        days = {look: (start + pd.Timedelta(days=look - 1)).date() for look in range(1, last + 1)}
        daily.insert(1, "day", daily["look"].map(days))
        lift.insert(1, "day", lift["look"].map(days))
    srm = srm_p_value(_last(daily, "users"), {v.name: v.percent for v in experiment.variants})
    return Analysis(experiment.experiment_id, daily, lift, srm,
                    guardrail_breaches(experiment, daily))


def final_total(experiment: Experiment) -> int:
    """Users of control and treatment together once the smaller of the two has the planned
    users (the alpha spending's information scale)."""
    planned = experiment.planned_users_per_variant or experiment.min_users_per_variant
    control, treatment = experiment.variants[0].percent, experiment.variants[1].percent
    return int(planned * (control + treatment) / min(control, treatment))


def _users_at(lists: pd.DataFrame, outcomes: pd.DataFrame,
              look: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    seen = lists[lists["look"] <= look]
    users = seen.groupby("user_id").agg(variant=("variant", "first"),
                                        impressions=("rec_id", "size"))
    done = outcomes[outcomes["look"] <= look]
    kind = done["event_type"]
    users["clicks"] = done[kind.isin(CLICKS)].groupby("user_id").size()
    bought = done[kind.isin(PURCHASES)]
    users["purchases"] = bought.groupby("user_id").size()
    users["revenue"] = bought.groupby("user_id")["value"].sum()
    return users.fillna({"clicks": 0, "purchases": 0, "revenue": 0.0}), seen


def _variant_row(look: int, name: str, users: pd.DataFrame, shown: pd.DataFrame) -> dict:
    impressions = int(users["impressions"].sum())
    n = len(users)
    return {
        "look": look, "variant": name, "users": n, "impressions": impressions,
        "clicks": int(users["clicks"].sum()), "purchases": int(users["purchases"].sum()),
        "ctr": users["clicks"].sum() / impressions if impressions else np.nan,
        "conversion": (users["purchases"] > 0).mean() if n else np.nan,
        "revenue_per_user": users["revenue"].mean() if n else np.nan,
        "p95_latency_ms": float(shown["latency_ms"].quantile(0.95)) if len(shown) else np.nan,
        "errors": int(shown["error"].sum()), "fallbacks": int(shown["fallback"].sum()),
        "error_rate": shown["error"].mean() if len(shown) else np.nan,
        "fallback_rate": shown["fallback"].mean() if len(shown) else np.nan,
    }


def _last(daily: pd.DataFrame, column: str) -> dict[str, int]:
    if daily.empty:
        return {}
    last = daily[daily["look"] == daily["look"].max()]
    return dict(zip(last["variant"], last[column].astype(int), strict=True))


def _pre_period(pre_events: pd.DataFrame | None, metric: str) -> pd.Series | None:
    """Each user's pre-experiment value of the metric's outcome (clicks, purchases or
    revenue), the CUPED covariate; None without pre-period events."""
    if pre_events is None or pre_events.empty:
        return None
    if metric == "revenue_per_user":
        bought = pre_events[pre_events["event_type"].isin(PURCHASES)]
        return bought.groupby("user_id")["value"].sum()
    kinds = PURCHASES if metric == "conversion" else CLICKS
    return pre_events[pre_events["event_type"].isin(kinds)].groupby("user_id").size()


def guardrail_breaches(experiment: Experiment, daily: pd.DataFrame,
                       min_impressions: int = 200) -> list[str]:
    """The guardrails the treatment breaks at the last look, each with its figures."""
    if daily.empty:
        return []
    last = daily[daily["look"] == daily["look"].max()].set_index("variant")
    control, treatment = experiment.variants[0].name, experiment.variants[1].name
    if control not in last.index or treatment not in last.index:
        return []
    c, t = last.loc[control], last.loc[treatment]
    out = []
    for guard in experiment.guardrails:
        metric, limit = guard.metric, guard.max_relative_increase
        if metric == "p95_latency_ms":
            if min(c["impressions"], t["impressions"]) >= min_impressions and (
                    t[metric] > c[metric] * (1 + limit)) and (
                    t[metric] - c[metric] > guard.min_increase_ms):
                out.append(f"p95 latency {t[metric]:.1f} ms > {c[metric]:.1f} ms x {1 + limit}")
        elif metric in ("error_rate", "fallback_rate"):
            hits = "errors" if metric == "error_rate" else "fallbacks"
            p = rate_increase_p_value(int(c[hits]), int(c["impressions"]), int(t[hits]),
                                      int(t["impressions"]))
            if p < experiment.alpha and t[metric] > c[metric] * (1 + limit):
                out.append(f"{metric} {t[metric]:.4f} > {c[metric]:.4f} (p = {p:.2g})")
    return out

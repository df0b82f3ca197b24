"""The scenarios of ``python -m simulation``: aa, ab, srm (fast replications over lists the
service gave) and broken, ab-http (through the real service, the event path, Dagster's
asset and MLflow aliases). Each returns a JSON-ready dict."""

from __future__ import annotations

import logging
import time

import httpx
import numpy as np
from mlflow import MlflowClient

from recsys.events.synthetic import World
from recsys.experiments.statistics import planned_users_per_variant
from recsys.models.registry import CHAMPION, PREVIOUS, alias_version
from simulation.offline import Arm, days_of, decision_of, experiment_of, per_user, replicate
from simulation.service_run import run_until_decided
from simulation.users import Behaviour, list_preferences

logger = logging.getLogger(__name__)
MDE, ALPHA, POWER, FLOOR = 0.05, 0.05, 0.8, 10_000


def fetch_lists(client: httpx.Client, users: list[str], kind: str, k: int = 10) -> dict:
    """Each user's list of ``kind`` (personalized, popular) from the service."""
    return {user: [i["item_id"] for i in client.get(
        f"/api/v1/recs/{user}", params={"limit": k, "type": kind}).json()["items"]]
        for user in users}


def arm(world: World, lists: dict[str, list[str]], users: list[str]) -> Arm:
    return Arm(*list_preferences(world, lists, users))


def plan(control: Arm, days: int, rng: np.random.Generator, behaviour: Behaviour) -> dict:
    """Planned users per variant from a pilot of the control: per-user CTR mean and sd."""
    totals = days_of(control, rng.integers(0, len(control.preference), 20_000), days, rng,
                     behaviour)[-1]
    ctr = per_user(totals, "ctr")
    needed = planned_users_per_variant("ctr", float(ctr.mean()), MDE, ALPHA, POWER,
                                       float(ctr.std()))
    return {"baseline_ctr": round(float(ctr.mean()), 5), "baseline_sd": round(float(ctr.std()), 5),
            "needed": needed, "planned_users_per_variant": max(needed, FLOOR)}


def aa(control: Arm, planned: int, reps: int, days: int, rng: np.random.Generator,
       behaviour: Behaviour) -> dict:
    """``reps`` A/A experiments with a look a day: share with any significant look."""
    experiment = experiment_of("aa", _v("treatment"), planned)
    fired, p_values = 0, []
    for _ in range(reps):
        analysis, p = replicate(experiment, control, control, days, rng, behaviour)
        fired += bool(analysis.lift["significant"].any())
        p_values.append(p)
    quantiles = np.quantile(p_values, [0.1, 0.25, 0.5, 0.75, 0.9]).round(3).tolist()
    from scipy import stats

    return {"aa_false_positive_rate": fired / reps, "aa_replications": reps, "aa_looks": days,
            "aa_p_value_quantiles_10_25_50_75_90": quantiles,
            "aa_p_values_uniform_ks_p": round(float(stats.kstest(p_values, "uniform").pvalue), 4)}


def ab(champion: Arm, popular: Arm, planned: int, reps: int, days: int,
       rng: np.random.Generator, behaviour: Behaviour) -> dict:
    """Popularity (treatment) against the champion at the planned size: share of
    replications whose sequential test finds the difference, and the rules' decision."""
    experiment = experiment_of("ab", _v("popularity", kind="popular"), planned)
    detected, analysis = 0, None
    for _ in range(reps):
        analysis, _ = replicate(experiment, champion, popular, days, rng, behaviour)
        detected += bool(analysis.lift["significant"].any())
    assert analysis is not None
    final = analysis.final
    return {"ab_power": detected / reps, "ab_replications": reps,
            "ab_lift_last": round(float(final["lift"]), 4),
            "ab_ci_last": [round(float(final["ci_lower"]), 4), round(float(final["ci_upper"]), 4)],
            "ab_decision": decision_of(experiment, analysis)}


def srm(control: Arm, planned: int, days: int, rng: np.random.Generator,
        behaviour: Behaviour) -> dict:
    """A split whose treatment loses 5 % of its users: the SRM check halts the analysis."""
    experiment = experiment_of("srm", _v("treatment"), planned)
    analysis, _ = replicate(experiment, control, control, days, rng, behaviour,
                            keep_treatment=0.95)
    return {"srm_detected": analysis.srm, "srm_p": float(f"{analysis.srm_p:.3g}"),
            "srm_users": analysis.users, "srm_decision": decision_of(experiment, analysis)}


def broken(client: httpx.Client, world: World, users: list[str], rng: np.random.Generator,
           behaviour: Behaviour, tracking: MlflowClient, model_name: str, rounds: int,
           min_users: int, surface: str | None = None, percent: float = 10) -> dict:
    """A random-ranking challenger on ``percent`` % (10) of all traffic, through the service,
    until the automatic rollback; the champion alias must not move."""
    before = alias_version(tracking, model_name, CHAMPION)
    name = f"broken-ranking-{time.strftime('%Y%m%dT%H%M%S')}"  # ids stay taken in the store
    spec = {"experiment_id": name, "primary_metric": "ctr",
            "variants": [{"name": "champion", "percent": 100 - percent},
                         {"name": "random", "percent": percent, "shuffle": True}],
            "min_users_per_variant": min_users, "surface": surface}
    created = client.post("/api/v1/recs/experiments", json=spec)
    created.raise_for_status()
    planned = created.json()["experiment"]["planned_users_per_variant"]
    outcome = run_until_decided(client, world, users, name, surface, rng,
                                behaviour, rounds)
    after = alias_version(tracking, model_name, CHAMPION)
    served = outcome["served_lists"].get("random", 0)
    users_served = max(outcome["served_users"].get("random", 1), 1)
    return {"broken_experiment": name, "broken_rollback_impressions": served,
            "broken_planned_impressions": int(planned * served / users_served),
            "broken_planned_users": planned,
            "broken_decision": _decisive(outcome["audit"]),
            "broken_status": (outcome["experiment"] or {}).get("status"),
            "champion_unchanged": before is not None and after is not None
            and before.version == after.version}


def ab_http(client: httpx.Client, world: World, users: list[str], rng: np.random.Generator,
            behaviour: Behaviour, tracking: MlflowClient, model_name: str, rounds: int,
            min_users: int, challenger_alias: str, surface: str | None = None) -> dict:
    """The popularity list (control) against a registered model version (treatment, by
    alias) through the service: the rules promote it, moving ``champion``."""
    before = alias_version(tracking, model_name, CHAMPION)
    name = f"ab-model-{time.strftime('%Y%m%dT%H%M%S')}"
    spec = {"experiment_id": name, "primary_metric": "ctr",
            "variants": [{"name": "popularity", "percent": 50, "kind": "popular"},
                         {"name": "model", "percent": 50, "model_alias": challenger_alias}],
            # the popularity list never falls back and is not ranked: a fallback guardrail
            # against it would count the users the model does not know, and its latency
            # is no yardstick for a ranked list (p95 4-9x of 1-2 ms on a busy machine): the
            # ranked list may take up to 4x and 50 ms more
            "guardrails": [{"metric": "p95_latency_ms", "max_relative_increase": 3.0,
                            "min_increase_ms": 50.0},
                           {"metric": "error_rate", "max_relative_increase": 0.0}],
            "min_users_per_variant": min_users, "surface": surface}
    client.post("/api/v1/recs/experiments", json=spec).raise_for_status()
    outcome = run_until_decided(client, world, users, name, surface, rng, behaviour,
                                rounds)
    after, previous = (alias_version(tracking, model_name, a) for a in (CHAMPION, PREVIOUS))
    return {"ab_http_experiment": name, "ab_http_decision": _decisive(outcome["audit"]),
            "ab_http_served_lists": outcome["served_lists"],
            "champion_before": before.version if before else None,
            "champion_after": after.version if after else None,
            "previous_champion_after": previous.version if previous else None}


def _decisive(audit: list[dict]) -> dict | None:
    final = [e for e in audit if e["action"] not in ("create", "continue")]
    return None if not final else {k: final[-1][k] for k in ("action", "reason", "at")}


def _v(name: str, **kw: object):  # noqa: ANN202
    from recsys.experiments.model import Variant

    return Variant(name=name, percent=50, **kw)

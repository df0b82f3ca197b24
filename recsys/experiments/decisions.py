"""Decisions from an analysis, and acting on them (experiment state, MLflow aliases).

Rules, in order, at each look:

1. sample ratio mismatch (p < 0.001): halt: the split is broken, no metric is trusted;
2. a guardrail breached, or the primary metric significantly worse: roll back (stop the
   experiment: every user is served by the control again at the service's next poll);
3. the primary metric significantly better with the planned users in every variant:
   promote (a model variant becomes ``champion``, the former one ``previous_champion``;
   a configuration variant is concluded as the one to adopt);
4. the planned users reached without a significant difference: conclude, keep the control;
5. otherwise continue.

Every decision, including "continue", is written to the store's audit log with its figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient

from recsys.experiments.analysis import Analysis
from recsys.experiments.model import Experiment, ExperimentSpec
from recsys.experiments.statistics import planned_users_per_variant
from recsys.experiments.store import ExperimentStore
from recsys.models.registry import alias_version, promote

logger = logging.getLogger(__name__)

HALT, ROLLBACK, PROMOTE, NO_DIFFERENCE, CONTINUE = (
    "halt_srm", "rollback", "promote", "conclude_no_difference", "continue")


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def decide(experiment: Experiment, analysis: Analysis) -> Decision:
    """The decision the rules take on ``analysis`` (see the module docstring)."""
    users = analysis.users
    final = analysis.final
    details = {"users": users, "srm_p": analysis.srm_p,
               "lift": final.get("lift"), "ci_lower": final.get("ci_lower"),
               "ci_upper": final.get("ci_upper"), "look": final.get("look"),
               "guardrail_breaches": analysis.guardrail_breaches}
    metric = experiment.primary_metric
    if analysis.srm:
        return Decision(HALT, f"sample ratio mismatch: users {users} against "
                        f"{ {v.name: v.percent for v in experiment.variants} } %, "
                        f"p = {analysis.srm_p:.2g} < 0.001", details)
    if analysis.guardrail_breaches:
        return Decision(ROLLBACK, "guardrail breached: " + "; ".join(
            analysis.guardrail_breaches), details)
    if final and final["significant"] and final["ci_upper"] < 0:
        return Decision(ROLLBACK, f"{metric} significantly worse: lift {final['lift']:+.1%} "
                        f"[{final['ci_lower']:+.1%}, {final['ci_upper']:+.1%}]", details)
    planned = experiment.planned_users_per_variant or experiment.min_users_per_variant
    reached = bool(users) and min(users.values()) >= planned
    if final and final["significant"] and final["ci_lower"] > 0 and reached:
        return Decision(PROMOTE, f"{metric} significantly better at the planned {planned} "
                        f"users per variant: lift {final['lift']:+.1%} "
                        f"[{final['ci_lower']:+.1%}, {final['ci_upper']:+.1%}]", details)
    if reached:
        return Decision(NO_DIFFERENCE, f"planned {planned} users per variant reached without a "
                        f"significant difference in {metric}", details)
    return Decision(CONTINUE, f"{min(users.values(), default=0)} of {planned} planned users per "
                    "variant; no rule fired", details)


def act(store: ExperimentStore, experiment: Experiment, decision: Decision,
        client: MlflowClient | None, model_name: str) -> Experiment:
    """Carry ``decision`` out and audit it; returns the experiment as it is now."""
    if decision.action == CONTINUE:
        store.record(experiment.experiment_id, CONTINUE, decision.reason, decision.details)
        return experiment
    if decision.action in (HALT, ROLLBACK):
        return store.finish(experiment.experiment_id, "stopped", decision.action,
                            decision.reason + "; every user is served by the control again",
                            decision.details)
    if decision.action == PROMOTE:
        treatment = experiment.variants[1]
        version = treatment.model_version
        if version is None and treatment.model_alias and client is not None:
            found = alias_version(client, model_name, treatment.model_alias)
            version = None if found is None else str(found.version)
        details = dict(decision.details)
        if version is not None and client is not None:
            details["previous_champion"] = promote(client, model_name, version)
            details["champion"] = version
            reason = f"{decision.reason}; champion moved to version {version}"
        else:
            config = treatment.model_dump(exclude={"name", "percent"}, exclude_defaults=True)
            details["configuration"] = config
            reason = f"{decision.reason}; adopt the serving configuration {config}"
        return store.finish(experiment.experiment_id, "concluded", PROMOTE, reason, details)
    return store.finish(experiment.experiment_id, "concluded", decision.action,
                        decision.reason + "; the control stays", decision.details)


def plan(spec: ExperimentSpec) -> int:
    """Users per variant the experiment needs: from its baseline, MDE, alpha and power
    (:func:`~recsys.experiments.statistics.planned_users_per_variant`), at least
    ``min_users_per_variant``; the floor alone while the baseline is unknown."""
    if spec.baseline is None:
        return spec.min_users_per_variant
    needed = planned_users_per_variant(spec.primary_metric, spec.baseline, spec.mde, spec.alpha,
                                       spec.power, spec.baseline_sd)
    return max(needed, spec.min_users_per_variant)

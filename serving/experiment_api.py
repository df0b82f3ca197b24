"""``/api/v1/recs/experiments``: create, list, read (with the audit log) and stop experiments.

The routes only read and write the durable :class:`~recsys.experiments.store.ExperimentStore`;
the service's :class:`serving.experiments.ExperimentTable` picks changes up within its
refresh interval and the Dagster asset analyses and decides. All need the admin role.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from recsys.experiments.decisions import plan
from recsys.experiments.model import Experiment, ExperimentSpec
from recsys.experiments.store import (
    ExperimentExistsError,
    ExperimentStore,
    SurfaceTakenError,
    UnknownExperimentError,
)
from recsys.platform.settings import get_settings

router = APIRouter(prefix="/api/v1/recs/experiments", tags=["experiments"])


@lru_cache(maxsize=1)
def get_store() -> ExperimentStore:
    """The store of this process's settings (tests call ``cache_clear()``)."""
    return ExperimentStore(get_settings().experiments_db)


class AuditEntryOut(BaseModel):
    at: datetime
    action: str = Field(description="create, continue, promote, rollback, halt_srm, "
                        "conclude_no_difference or stop.")
    reason: str
    details: dict[str, Any]


class ExperimentOut(BaseModel):
    experiment: Experiment
    audit: list[AuditEntryOut]


class StopRequest(BaseModel):
    reason: str = Field(default="stopped through the API", max_length=500)


def _found(experiment_id: str) -> Experiment:
    try:
        return get_store().get(experiment_id)
    except UnknownExperimentError as exc:
        raise HTTPException(status_code=404,
                            detail=f"no experiment {experiment_id!r}") from exc


def _with_audit(experiment: Experiment) -> ExperimentOut:
    entries = get_store().audit(experiment.experiment_id)
    return ExperimentOut(experiment=experiment, audit=[
        AuditEntryOut(at=e.at, action=e.action, reason=e.reason, details=e.details)
        for e in entries])


@router.get("", response_model=list[Experiment])
def list_experiments(status: str | None = None) -> list[Experiment]:
    """Every experiment (``status``: running, stopped or concluded, to filter)."""
    return get_store().list(status)


@router.post("", response_model=ExperimentOut, status_code=201,
             responses={409: {"description": "The id, or the surface, is taken."}})
def create_experiment(spec: ExperimentSpec) -> ExperimentOut:
    """Start an experiment; its users per variant are planned from the baseline, MDE,
    alpha and power (at least ``min_users_per_variant``)."""
    try:
        experiment = get_store().create(spec, planned_users_per_variant=plan(spec),
                                        reason="created through the API")
    except (ExperimentExistsError, SurfaceTakenError) as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return _with_audit(experiment)


@router.get("/{experiment_id}", response_model=ExperimentOut,
            responses={404: {"description": "No such experiment."}})
def get_experiment(experiment_id: str) -> ExperimentOut:
    """The experiment, its plan and state, and its audit log (every look and decision)."""
    return _with_audit(_found(experiment_id))


@router.post("/{experiment_id}/stop", response_model=ExperimentOut,
             responses={404: {"description": "No such experiment."}})
def stop_experiment(experiment_id: str, body: StopRequest | None = None) -> ExperimentOut:
    """Stop it now: every user is served by the control again at the service's next
    refresh; the champion alias is not touched."""
    _found(experiment_id)
    reason = (body or StopRequest()).reason
    return _with_audit(get_store().finish(experiment_id, "stopped", "stop", reason))

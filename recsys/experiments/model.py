"""What an experiment is: variants with traffic percentages, a primary metric, guardrails and
the planned sample size.

A variant is served either by a registered model (an MLflow alias or version) or by a serving
configuration (candidate mix, diversity weight), so the same machinery tests models and
settings. The first variant is the control.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
PrimaryMetric = Literal["ctr", "conversion", "revenue_per_user"]
GuardrailMetric = Literal["p95_latency_ms", "error_rate", "fallback_rate", "ctr", "conversion",
                          "revenue_per_user"]
Status = Literal["running", "stopped", "concluded"]


class Variant(BaseModel):
    """One arm: its share of the traffic and what serves it (nothing set: the champion)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    percent: float = Field(gt=0, le=100, description="Share of the experiment's users, in %.")
    model_alias: Name | None = Field(default=None, description="MLflow alias serving it.")
    model_version: Annotated[str, StringConstraints(pattern=r"^\d+$")] | None = Field(
        default=None, description="MLflow version serving it (instead of an alias).")
    kind: Literal["personalized", "popular"] | None = Field(
        default=None, description="Candidate mix: 'popular' serves the popularity list.")
    diversity: float | None = Field(default=None, ge=0, le=1, description="MMR weight.")
    shuffle: bool = Field(default=False, description="Rank at random: items drawn uniformly "
                          "from the allowed catalog (a deliberately broken arm, to drill the "
                          "automatic rollback).")

    @model_validator(mode="after")
    def _one_model(self) -> Variant:
        if self.model_alias and self.model_version:
            raise ValueError("give model_alias or model_version, not both")
        return self


class Guardrail(BaseModel):
    """A metric the treatment must not make significantly worse; for latency, its p95 must
    stay within ``max_relative_increase`` of the control's or within ``min_increase_ms`` of
    it (a ranked list p95 at 4 ms against a popularity list's 1 ms harms nobody)."""

    model_config = ConfigDict(extra="forbid")

    metric: GuardrailMetric
    max_relative_increase: float = Field(default=0.2, ge=0)
    min_increase_ms: float = Field(default=10.0, ge=0, description="p95 latency only: a "
                                   "breach also needs the treatment this many ms slower.")


DEFAULT_GUARDRAILS = [Guardrail(metric="p95_latency_ms", max_relative_increase=0.5),
                      Guardrail(metric="error_rate", max_relative_increase=0.0),
                      Guardrail(metric="fallback_rate", max_relative_increase=0.0)]


class ExperimentSpec(BaseModel):
    """What a creator declares (``POST /api/v1/recs/experiments``, Dagster config)."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: Name
    description: str = Field(default="", max_length=500)
    surface: Name | None = Field(default=None, description="None: every request that names no "
                                 "experiment; else only requests with experiment_id = this id.")
    variants: list[Variant] = Field(min_length=2, max_length=8)
    primary_metric: PrimaryMetric = "ctr"
    guardrails: list[Guardrail] = Field(default_factory=lambda: list(DEFAULT_GUARDRAILS))
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)
    mde: float = Field(default=0.05, gt=0, lt=1, description="Minimum detectable effect, "
                       "relative to the baseline.")
    baseline: float | None = Field(default=None, gt=0, description="Baseline of the primary "
                                   "metric for planning (None: measured at the first look).")
    baseline_sd: float | None = Field(default=None, gt=0, description="Its per-user standard "
                                      "deviation (continuous metrics).")
    min_users_per_variant: int = Field(default=10_000, ge=1, description="Floor of the plan.")
    max_days: int = Field(default=14, ge=1, le=90, description="Planned number of daily looks.")

    @model_validator(mode="after")
    def _shares(self) -> ExperimentSpec:
        total = sum(v.percent for v in self.variants)
        if abs(total - 100) > 1e-6:
            raise ValueError(f"variant percentages must add up to 100, got {total}")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        return self


class Experiment(ExperimentSpec):
    """A stored experiment: the spec plus its salt, plan, state and decision."""

    salt: str = Field(default_factory=lambda: secrets.token_hex(8))
    status: Status = "running"
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    stopped_at: datetime | None = None
    planned_users_per_variant: int | None = None
    decision: str | None = None

    @property
    def control(self) -> Variant:
        return self.variants[0]

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

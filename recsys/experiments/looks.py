"""One look at a running experiment: read the logs, analyse, decide, act, and report.

:func:`look` is what the Dagster asset runs for each running experiment (and what the
simulation calls without Dagster): impressions and events since the experiment started
(plus two weeks before it for CUPED), :func:`~recsys.experiments.analysis.analyse`,
:func:`~recsys.experiments.decisions.decide` and :func:`~recsys.experiments.decisions.act`,
then the daily table and the lift plot to an MLflow run (metrics per look as steps).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from recsys.evaluation.plots import markdown_image, new_figure, png_bytes
from recsys.evaluation.tracking import ensure_experiment
from recsys.events.event_log import EventLog
from recsys.events.impressions import ImpressionLog
from recsys.experiments.analysis import Analysis, analyse
from recsys.experiments.decisions import Decision, act, decide
from recsys.experiments.model import Experiment
from recsys.experiments.store import ExperimentStore
from recsys.platform.settings import Settings

logger = logging.getLogger(__name__)

MLFLOW_EXPERIMENT = "recsys-experiments"
TABLE_COLUMNS = ["look", "day", "variant", "users", "impressions", "ctr", "conversion",
                 "revenue_per_user", "p95_latency_ms", "error_rate", "fallback_rate"]


@dataclass(frozen=True)
class Look:
    experiment: Experiment
    analysis: Analysis
    decision: Decision
    mlflow_run_id: str | None = None


def lift_png(analysis: Analysis, metric: str) -> bytes:
    """The treatment's relative lift at each daily look with its sequential interval (a bar
    at every look, a band between them)."""
    fig, ax = new_figure(6, 3.5)
    lift = analysis.lift
    if len(lift):
        look, centre = lift["look"], lift["lift"] * 100
        lower, upper = lift["ci_lower"] * 100, lift["ci_upper"] * 100
        if len(lift) > 1:
            ax.fill_between(look, lower, upper, alpha=0.2)
        ax.errorbar(look, centre, yerr=[centre - lower, upper - centre], marker="o",
                    capsize=4, label="lift, group-sequential interval")
        ax.set_xticks(look.tolist(), [str(day) for day in lift["day"]],
                      rotation=30 if len(lift) > 4 else 0)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("day (cumulative look)")
    ax.set_ylabel(f"{metric} lift vs control (%)")
    ax.set_title(f"{analysis.experiment_id}: {metric} lift over time")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return png_bytes(fig, dpi=90)


def plot_markdown(analysis: Analysis, metric: str) -> str:
    """Markdown with :func:`lift_png` inline (a ``data:`` URI, for Dagster's metadata)."""
    return markdown_image(lift_png(analysis, metric), f"{metric} lift")


def table_markdown(analysis: Analysis) -> str:
    """Per look and variant figures, with the lift and its interval, as a markdown table."""
    if analysis.daily.empty:
        return "no impressions yet"
    table = analysis.daily[TABLE_COLUMNS].merge(
        analysis.lift[["look", "lift", "ci_lower", "ci_upper", "significant"]], on="look",
        how="left")
    return table.round(4).to_markdown(index=False)


def read_logs(settings: Settings, experiment: Experiment,
              pre_days: int = 14) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Impressions since the experiment started, events since then, and events of the
    ``pre_days`` before it (the CUPED covariate)."""
    start = experiment.created_at.astimezone(UTC)
    today = datetime.now(UTC).date()
    days = [start.date() + timedelta(days=n) for n in range((today - start.date()).days + 1)]
    impressions = ImpressionLog(settings.impression_log_dir).read(days)
    log = EventLog(settings.event_log_dir)
    frames = [log.read_day(day) for day in days]
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    before = [start.date() - timedelta(days=n) for n in range(1, pre_days + 1)]
    pre = [log.read_day(day) for day in before]
    pre_events = pd.concat(pre, ignore_index=True) if pre else pd.DataFrame()
    if len(pre_events):
        pre_events = pre_events[pre_events["timestamp"] < pd.Timestamp(start)]
    return impressions, events, pre_events


def look(store: ExperimentStore, experiment: Experiment, settings: Settings,
         client: MlflowClient | None, apply: bool = True) -> Look:
    """Analyse ``experiment`` now, decide, act (unless ``apply`` is False) and log."""
    impressions, events, pre_events = read_logs(settings, experiment)
    window = timedelta(hours=settings.attribution_window_hours)
    analysis = analyse(experiment, impressions, events, window, pre_events)
    decision = decide(experiment, analysis)
    if apply:
        experiment = act(store, experiment, decision, client, settings.model_name)
    run_id = None
    if client is not None:
        run_id = log_look(client, settings.mlflow_artifact_dir, experiment, analysis, decision)
    logger.info("experiment %s: %s (%s)", experiment.experiment_id, decision.action,
                decision.reason)
    return Look(experiment, analysis, decision, run_id)


def log_look(client: MlflowClient, artifact_dir: Path, experiment: Experiment,
             analysis: Analysis, decision: Decision) -> str:
    """An MLflow run per look: lift per look as steps, users, the decision, plot, table."""
    experiment_id = ensure_experiment(client, MLFLOW_EXPERIMENT, artifact_dir)
    name = f"{experiment.experiment_id}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        mlflow.set_tags({"experiment": experiment.experiment_id, "action": decision.action,
                         "reason": decision.reason[:5000], "status": experiment.status})
        for row in analysis.lift.itertuples():
            mlflow.log_metrics({"lift": row.lift, "ci_lower": row.ci_lower,
                                "ci_upper": row.ci_upper}, step=int(row.look))
        for variant, users in analysis.users.items():
            mlflow.log_metric(f"users.{variant}", users)
        mlflow.log_metric("srm_p", analysis.srm_p)
        with tempfile.TemporaryDirectory() as tmp:
            plot = Path(tmp) / "lift.png"
            plot.write_bytes(lift_png(analysis, experiment.primary_metric))
            mlflow.log_artifact(str(plot))
        mlflow.log_text(table_markdown(analysis), "results.md")
    return run.info.run_id

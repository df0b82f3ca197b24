"""``POST /api/v1/recs/train``: launch the Dagster retrain job through Dagster's GraphQL client."""

from __future__ import annotations

import logging

import requests

from serving.config import ServingSettings

logger = logging.getLogger(__name__)


class DagsterUnavailableError(RuntimeError):
    """The Dagster webserver cannot be reached or refused the launch."""


class RetrainRunningError(RuntimeError):
    """A run of the retrain job is queued or running already."""

    def __init__(self, run_id: str):
        super().__init__(f"retraining is already in progress as run {run_id}")
        self.run_id = run_id


_ACTIVE_RUNS = """
query ActiveRuns($job: String!) {
  runsOrError(filter: {pipelineName: $job,
                       statuses: [QUEUED, NOT_STARTED, STARTING, STARTED]}, limit: 1) {
    ... on Runs { results { runId } }
  }
}
"""


def active_retrain(settings: ServingSettings) -> str | None:
    """The id of a queued or running run of the retrain job, None when there is none."""
    url = f"http://{settings.dagster_host}:{settings.dagster_port}/graphql"
    try:
        reply = requests.post(url, json={"query": _ACTIVE_RUNS,
                                         "variables": {"job": settings.retrain_job}}, timeout=10)
        reply.raise_for_status()
        runs = reply.json()["data"]["runsOrError"].get("results", [])
    except (requests.RequestException, OSError, KeyError, TypeError, ValueError) as exc:
        raise DagsterUnavailableError(
            f"Dagster webserver at {url} could not list runs: {exc}") from exc
    return runs[0]["runId"] if runs else None


def launch_retrain(settings: ServingSettings) -> str:
    """Submit ``settings.retrain_job`` and return the Dagster run id; raises
    :class:`RetrainRunningError` while a run of it is queued or running (one at a time:
    two runs would race to promote)."""
    # Imported here: Dagster's client pulls in most of Dagster (about 1.5 s of CPU at each
    # worker's start) for a call an operator makes now and then.
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
    from gql.transport.exceptions import TransportError

    where = f"{settings.dagster_host}:{settings.dagster_port}"
    running = active_retrain(settings)
    if running is not None:
        raise RetrainRunningError(running)
    try:
        client = DagsterGraphQLClient(settings.dagster_host, port_number=settings.dagster_port,
                                      timeout=30)
        run_id = client.submit_job_execution(
            settings.retrain_job, repository_location_name=settings.dagster_location
        )
    except (DagsterGraphQLClientError, TransportError, requests.RequestException, OSError) as exc:
        raise DagsterUnavailableError(
            f"Dagster webserver at {where} did not launch {settings.retrain_job}: {exc}. "
            "Start it with `make ui` (or `dagster-webserver -w workspace.yaml -p "
            f"{settings.dagster_port}`)."
        ) from exc
    logger.info("launched %s as run %s", settings.retrain_job, run_id)
    return run_id

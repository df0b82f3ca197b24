"""``POST /api/v1/recs/train``: launch the Dagster retrain job through Dagster's GraphQL client."""

from __future__ import annotations

import logging

import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from gql.transport.exceptions import TransportError

from serving.config import ServingSettings

logger = logging.getLogger(__name__)


class DagsterUnavailableError(RuntimeError):
    """The Dagster webserver cannot be reached or refused the launch."""


def launch_retrain(settings: ServingSettings) -> str:
    """Submit ``settings.retrain_job`` and return the Dagster run id."""
    where = f"{settings.dagster_host}:{settings.dagster_port}"
    try:
        client = DagsterGraphQLClient(settings.dagster_host, port_number=settings.dagster_port,
                                      timeout=10)
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

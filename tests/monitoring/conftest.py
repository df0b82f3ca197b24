"""A trained platform for the live-metrics checks, shared with the integration suite."""

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from orchestration.run import main as run_platform
from recsys.models.registry import CHAMPION, alias_version
from recsys.platform.settings import Settings, get_settings

#: The integration suite's small world (tests/integration/conftest.py).
WORLD = ["--source", "synthetic", "--users", "300", "--items", "200", "--days", "30",
         "--seed", "7"]


@pytest.fixture(scope="session")
def trained_platform(platform_dirs: Path) -> Settings:
    """Settings of the session's platform once it has a champion model.

    ``make test`` runs tests/integration first, whose ``platform`` fixture has then trained
    one in the session's directories; run alone, these tests run the pipeline themselves.
    Running it a second time would retrain and register another version for nothing.
    """
    settings = get_settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    if alias_version(MlflowClient(), settings.model_name, CHAMPION) is None:
        assert run_platform(WORLD) == 0, "the platform job failed"
    return settings

"""The MLflow UI in Chromium: the registered model and its ``champion`` alias."""

from collections.abc import Iterator

import pytest
from mlflow import MlflowClient
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from recsys.models.registry import CHAMPION, alias_version
from tests.browser.conftest import BIN, WAIT_SECONDS, screenshot
from tests.conftest import free_port, running_server
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_url(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on the platform's tracking store."""
    port = free_port()
    with running_server(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", platform.settings.tracking_uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        f"http://127.0.0.1:{port}/health", cwd=tmp_path_factory.mktemp("mlflow-server"),
    ):
        yield f"http://127.0.0.1:{port}"


def test_browser_mlflow_ui_shows_the_registered_model_with_its_champion_alias(
    browser: webdriver.Chrome, mlflow_url: str, platform: Platform, tmp_path
) -> None:
    name = platform.settings.model_name
    champion = alias_version(MlflowClient(platform.settings.tracking_uri), name, CHAMPION)
    assert champion is not None
    browser.get(f"{mlflow_url}/#/models/{name}")
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda d: CHAMPION in d.find_element(By.TAG_NAME, "body").text,
        message=f"the page of model {name} shows no {CHAMPION} alias")
    assert name in browser.find_element(By.TAG_NAME, "body").text
    rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, '[role="row"]')]
    with_alias = [row for row in rows if f"@ {CHAMPION}" in row]
    assert len(with_alias) == 1 and f"Version {champion.version}" in with_alias[0], rows
    screenshot(browser, tmp_path, "mlflow-registered-model")

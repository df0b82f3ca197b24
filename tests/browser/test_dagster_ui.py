"""The Dagster UI in Chromium: the asset graph and the ``daily_retrain`` schedule."""

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from recsys.platform.settings import PROJECT_ROOT
from tests.browser.conftest import BIN, WAIT_SECONDS, screenshot
from tests.conftest import free_port, running_server
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dagster_url(platform: Platform) -> Iterator[str]:
    """``dagster-webserver`` on the project's workspace and the platform's instance."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server(
        [str(BIN / "dagster-webserver"), "-w", str(PROJECT_ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        f"{url}/server_info", cwd=PROJECT_ROOT,
    ):
        # What the "Join the Dagster community" dialog's Skip button sends, so the dialog
        # does not cover the pages (a new instance shows it once).
        seen = httpx.post(f"{url}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=30)
        assert seen.is_success, seen.text
        yield url


def shows(label: str, name: str) -> bool:
    """Whether a node labelled ``label`` is asset ``name``: zoomed out, Dagster shortens a
    long name in the middle (``champion_re…_model``)."""
    head, cut, tail = label.partition("…")
    return label == name or (bool(cut) and name.startswith(head) and name.endswith(tail))


def test_browser_dagster_ui_shows_the_asset_graph_and_the_daily_retrain_schedule(
    browser: webdriver.Chrome, dagster_url: str, tmp_path
) -> None:
    # Imported here: the definitions bind their resources to the settings of the moment,
    # which the session's fixtures have set by now (not yet at collection).
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {key.path[-1] for key in graph.get_all_asset_keys()}
    groups = sorted({graph.get(key).group_name for key in graph.get_all_asset_keys()})
    # The global lineage with every group expanded, as its "Expand all groups" links it.
    expanded = ",".join(f"global@global:{group}" for group in groups)
    browser.set_window_size(1920, 1080)
    try:
        browser.get(f"{dagster_url}/asset-groups?{urlencode({'expanded': expanded})}")

        def missing(driver: webdriver.Chrome) -> set[str]:
            labels = [node.text for node in driver.find_elements(
                By.CSS_SELECTOR, "[class*='AssetNode_assetName']")]
            return {name for name in assets if not any(shows(label, name) for label in labels)}

        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda d: not missing(d), message="the asset graph does not show every asset")
        screenshot(browser, tmp_path, "dagster-asset-graph")
    finally:
        browser.set_window_size(1440, 1000)

    schedule = defs.resolve_schedule_def("daily_retrain")
    browser.get(f"{dagster_url}/locations/recsys/schedules/{schedule.name}")
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda d: all(part in d.find_element(By.TAG_NAME, "body").text
                      for part in (schedule.name, schedule.job_name, schedule.cron_schedule)),
        message="the schedule page shows no daily_retrain with its job and cron")
    screenshot(browser, tmp_path, "dagster-schedule")


def test_browser_dagster_asset_page_shows_the_evaluation_plot(
    browser: webdriver.Chrome, dagster_url: str, tmp_path
) -> None:
    """``model_evaluation``'s page lists the NDCG@k plot in its metadata; opened, it is an
    image drawn from the markdown's ``data:`` URI (Dagster's sanitizer lets ``data:`` through)."""
    browser.get(f"{dagster_url}/assets/model_evaluation")
    show = WebDriverWait(browser, WAIT_SECONDS).until(
        lambda d: d.find_elements(By.XPATH, "//tr[.//*[text()='ndcg_at_k_plot']]"
                                            "//a[text()='[Show Markdown]']"),
        message="the asset page lists no ndcg_at_k_plot metadata")
    show[0].click()

    def plot(driver: webdriver.Chrome) -> object:
        images = driver.find_elements(
            By.CSS_SELECTOR, "[role='dialog'] img[src^='data:image/png;base64,']")
        drawn = [image for image in images if driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image)]
        return drawn[0] if drawn else False

    image = WebDriverWait(browser, WAIT_SECONDS).until(
        plot, message="the dialog shows no drawn image from the plot's data URI")
    assert image.get_attribute("alt") == "NDCG@k"
    assert image.size["width"] > 100 and image.size["height"] > 100
    screenshot(browser, tmp_path, "dagster-evaluation-plot")

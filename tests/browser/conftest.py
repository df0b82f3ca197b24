"""Headless Chromium through Selenium against the real servers, on the integration platform.

Needs Debian's ``chromium`` and ``chromedriver`` (``apt-get install chromium
chromium-driver``); every test here is skipped, with that reason, without them. The browser
resolves no host but 127.0.0.1, so a page that needs the internet shows it. Each test saves
a screenshot into its ``tmp_path``; with ``RECSYS_SCREENSHOTS_DIR`` set (``make screenshots``)
it is copied there as well.
"""

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from tests.conftest import free_port, running_server
from tests.integration import conftest as integration
from tests.integration.conftest import Platform

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
BIN = Path(sys.executable).parent
#: Chrome's host resolver answers "not found" for every name but the loopback address.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
#: Long enough for a busy 2-core machine; a wait that runs out fails with what it waited for.
WAIT_SECONDS = 90


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests after every other test of the session.

    Their ``platform`` runs the integration platform's code once more on the session's
    folders (below); after the integration tests that changes nothing they check, before
    them it would. The order among the other tests does not change (the sort is stable).
    """
    here = Path(__file__).parent
    items.sort(key=lambda item: here in item.path.parents)
    if not (CHROMIUM and CHROMEDRIVER):  # skipped before any server or pipeline starts
        skip = pytest.mark.skip(reason="needs Chromium and chromedriver: "
                                       "apt-get install chromium chromium-driver")
        for item in items:
            if here in item.path.parents:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def platform(platform_dirs: Path) -> Platform:
    """The integration tests' platform, built by their fixture's own code.

    Their fixture is not visible from this folder, and pytest has no public way to share a
    fixture's value with a sibling folder: in a session running both folders the pipeline
    runs twice (about 20 s here), the second time after the integration tests.
    """
    return integration.platform.__wrapped__(platform_dirs)


def key_of(platform: Platform) -> str | None:
    """An admin API key of the platform, once the service requires one."""
    return getattr(platform, "admin_key", None)


def headers_of(platform: Platform) -> dict[str, str]:
    key = key_of(platform)
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the session, with no network but 127.0.0.1."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1440,1000", "--hide-scrollbars", OFFLINE):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # requests sent
    # The driver named explicitly: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def service_url(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``bentoml serve`` of the service on the platform's champion."""
    port = free_port()
    # Its own metrics folder: `bentoml serve` empties the one it is given at start.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("prom"))}
    with running_server(
        [str(BIN / "bentoml"), "serve", "serving.service:RecommendationService",
         "--port", str(port)],
        f"http://127.0.0.1:{port}/health/ready", timeout=180, env=env,
    ):
        yield f"http://127.0.0.1:{port}"


def screenshot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    """Save the window as ``tmp_path/name.png``; copy it to ``$RECSYS_SCREENSHOTS_DIR``."""
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot for {name}"
    if target := os.environ.get("RECSYS_SCREENSHOTS_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path

"""The service's own pages in Chromium over HTTP: the demo page and the offline API reference."""

import json
from urllib.parse import quote

import httpx
import pandas as pd
import pytest
from fastapi.openapi.utils import get_openapi
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import WAIT_SECONDS, headers_of, key_of, screenshot
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration


def active_user(platform: Platform, rank: int) -> str:
    """The ``rank``-th most active user (ranks the integration tests leave alone)."""
    valid = pd.read_parquet(platform.settings.warehouse_dir / "validated_events")
    return str(valid["user_id"].value_counts().index[rank])


def demo_url(service_url: str, user: str, platform: Platform) -> str:
    """The demo page for ``user``, given the platform's key when there is one."""
    key = key_of(platform)
    return f"{service_url}/demo?user={quote(user)}" + (f"&key={quote(key)}" if key else "")


def shown_items(driver: webdriver.Chrome) -> list[str]:
    return [card.get_attribute("data-item-id")
            for card in driver.find_elements(By.CSS_SELECTOR, "#cards .card")]


def wait_for_list(driver: webdriver.Chrome, loads: int, ok: bool = True) -> None:
    """Wait for the page's ``loads``-th answer; with ``ok``, fail with the page's message
    unless it is a list."""
    cards = driver.find_element(By.ID, "cards")
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda _: int(cards.get_attribute("data-loads")) >= loads,
        message=f"the demo page never showed answer number {loads}")
    if ok:
        assert cards.get_attribute("data-state") == "ok", driver.find_element(By.ID, "status").text


def flag(driver: webdriver.Chrome, name: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'#meta [data-flag="{name}"] .value').text


def test_browser_demo_shows_cards_and_a_click_removes_the_item(
    browser: webdriver.Chrome, service_url: str, platform: Platform, tmp_path
) -> None:
    user = active_user(platform, rank=12)
    browser.get(demo_url(service_url, user, platform))
    wait_for_list(browser, 1)
    with httpx.Client(base_url=service_url, headers=headers_of(platform), timeout=30) as http:
        expected = http.get(f"/api/v1/recs/{user}", params={"limit": 10}).json()
        assert shown_items(browser) == [item["item_id"] for item in expected["items"]]
        first = browser.find_element(By.CSS_SELECTOR, "#cards .card")
        top = expected["items"][0]
        for text in (top["title"], top["reason"], f"{top['score']:.3f}", *top["categories"]):
            assert text in first.text
        assert flag(browser, "model_version") == expected["model_version"]
        assert flag(browser, "fallback") == "no"

        first.click()  # posts a click event, then asks for the list again
        wait_for_list(browser, 2)
        after = shown_items(browser)
        assert top["item_id"] not in after and len(after) == 10
        assert "gone from the refreshed list" in browser.find_element(By.ID, "status").text
        logged = browser.find_element(By.CSS_SELECTOR, "#events li[data-item-id]")
        assert logged.get_attribute("data-item-id") == top["item_id"]
        assert logged.get_attribute("data-event-type") == "click" and "accepted" in logged.text
        # the service agrees with what the page shows
        again = http.get(f"/api/v1/recs/{user}", params={"limit": 10}).json()
        assert [item["item_id"] for item in again["items"]] == after
    screenshot(browser, tmp_path, "demo-after-click")


def test_browser_demo_diversity_and_category_filter_go_through_post_recommend(
    browser: webdriver.Chrome, service_url: str, platform: Platform, tmp_path
) -> None:
    user = active_user(platform, rank=13)
    browser.get(demo_url(service_url, user, platform))
    wait_for_list(browser, 1)
    category = browser.find_element(By.CSS_SELECTOR, "#cards .card .chip").text
    browser.find_element(By.ID, "category").send_keys(category)
    browser.find_element(By.ID, "diversity-on").click()  # asks again, through POST /recommend
    wait_for_list(browser, 2)
    assert browser.find_element(By.ID, "request").text.startswith("POST /recommend")
    expected = httpx.post(f"{service_url}/recommend", headers=headers_of(platform), json={
        "user_id": user, "num_items": 10, "diversity": 0.5,
        "filters": {"categories": [category]}}, timeout=30).json()
    assert expected["items"] and shown_items(browser) == [i["item_id"] for i in expected["items"]]
    for card in browser.find_elements(By.CSS_SELECTOR, "#cards .card"):
        assert category in [chip.text for chip in card.find_elements(By.CSS_SELECTOR, ".chip")]
    screenshot(browser, tmp_path, "demo-diversity-category")


def test_browser_demo_sends_the_key_from_the_url_as_a_bearer_token(
    browser: webdriver.Chrome, service_url: str, platform: Platform
) -> None:
    user = active_user(platform, rank=14)
    browser.get_log("performance")  # drop what earlier pages logged
    try:
        browser.get(f"{service_url}/demo?user={quote(user)}&key=demo-key-1")
        wait_for_list(browser, 1, ok=False)  # whether this key is accepted is not the point
        assert browser.find_element(By.ID, "key").get_attribute("value") == "demo-key-1"
        assert "key=" not in browser.current_url  # kept out of the address bar
        sent = [json.loads(entry["message"])["message"]["params"]["request"]
                for entry in browser.get_log("performance")
                if '"Network.requestWillBeSent"' in entry["message"]]
        api = [request for request in sent if "/api/v1/recs/" in request["url"]]
        assert api and all(request["headers"].get("Authorization") == "Bearer demo-key-1"
                           for request in api)
        browser.get(f"{service_url}/demo?user={quote(user)}")  # persisted for the next visit
        assert browser.find_element(By.ID, "key").get_attribute("value") == "demo-key-1"
    finally:
        browser.execute_script("localStorage.removeItem('recsys-demo.key')")


def every_route() -> set[str]:
    """The paths the service answers: FastAPI's own schema of the REST routes, the BentoML
    APIs of the service class, and BentoML's infrastructure endpoints."""
    from serving.service import RecommendationService, app

    rest = get_openapi(title=app.title, version=app.version, routes=app.routes)["paths"]
    bentoml_apis = {method.route for method in RecommendationService.apis.values()}
    return set(rest) | bentoml_apis | {"/livez", "/readyz", "/metrics"}


def test_browser_api_reference_renders_offline_and_lists_every_route(
    browser: webdriver.Chrome, service_url: str, tmp_path
) -> None:
    routes = every_route()
    assert {"/recommend", "/events", "/api/v1/recs/{user_id}"} <= routes
    browser.get(f"{service_url}/docs")
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")) >= len(routes),
        message="Swagger UI rendered no complete list of operations")
    listed = {element.get_attribute("data-path")
              for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert routes <= listed, routes - listed
    assert "Recommendation API" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    # Everything the page loaded, or points at, came from the service itself.
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    referenced = browser.execute_script(
        "return [...document.querySelectorAll('script[src], link[href], img[src]')]"
        ".map(e => e.src || e.href).filter(u => !u.startsWith('data:'))")
    assert loaded and referenced
    assert [url for url in loaded + referenced if not url.startswith(service_url)] == []
    document = httpx.get(f"{service_url}/openapi.json", timeout=30).json()
    assert routes <= set(document["paths"])
    body = document["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]
    browser.set_window_size(1440, 1400)  # the description and every route
    try:
        screenshot(browser, tmp_path, "api-reference")
    finally:
        browser.set_window_size(1440, 1000)

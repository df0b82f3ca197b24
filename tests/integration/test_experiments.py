"""Experiments through the real service: the admin API, the durable store, sticky variants
served by a configuration, and a stop that takes effect without a restart."""

import time
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from serving.auth import KeyStore, Role
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration

SPEC = {
    "experiment_id": "api-popular",
    "surface": "api-popular",  # only requests naming it: the other tests' traffic is untouched
    "variants": [{"name": "control", "percent": 50},
                 {"name": "popular", "percent": 50, "kind": "popular"}],
    "primary_metric": "ctr",
    "baseline": 0.1,
    "min_users_per_variant": 100,
}


def eventually(check: Callable[[], bool], timeout: float = 20) -> bool:
    """Poll ``check`` until it holds (the service re-reads experiments every few seconds)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_experiments_need_the_admin_role(service_client: TestClient,
                                         platform: Platform) -> None:
    _, reader = KeyStore(platform.settings.data_dir / "auth" / "keys.json").create(
        Role.READER, "experiments-reader")
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert service_client.get("/api/v1/recs/experiments", headers=as_reader).status_code == 403
    refused = service_client.post("/api/v1/recs/experiments", json=SPEC, headers=as_reader)
    assert refused.status_code == 403


def test_bad_experiments_get_422_naming_what_is_wrong(service_client: TestClient) -> None:
    bad = dict(SPEC, variants=[{"name": "a", "percent": 60}, {"name": "b", "percent": 30}])
    answer = service_client.post("/api/v1/recs/experiments", json=bad)
    assert answer.status_code == 422 and "add up to 100" in answer.text
    one = dict(SPEC, variants=[{"name": "a", "percent": 100}])
    assert service_client.post("/api/v1/recs/experiments", json=one).status_code == 422


def test_create_serve_stop_through_the_api(service_client: TestClient) -> None:
    created = service_client.post("/api/v1/recs/experiments", json=SPEC)
    assert created.status_code == 201, created.text
    body = created.json()
    experiment = body["experiment"]
    # planned from the baseline, MDE 5 % relative, alpha 0.05, power 0.8
    assert experiment["planned_users_per_variant"] > 50_000
    assert experiment["status"] == "running" and [a["action"] for a in body["audit"]] == [
        "create"]
    again = service_client.post("/api/v1/recs/experiments", json=SPEC)
    assert again.status_code == 409
    listed = service_client.get("/api/v1/recs/experiments", params={"status": "running"})
    assert "api-popular" in [e["experiment_id"] for e in listed.json()]

    def recs(user: str) -> dict:
        return service_client.get(f"/api/v1/recs/{user}", params={
            "limit": 5, "experiment_id": "api-popular"}).json()

    assert eventually(lambda: recs("u1")["variant"] in ("control", "popular"))
    users = [f"u{n}" for n in range(40)]
    variants = {user: recs(user)["variant"] for user in users}
    assert variants == {user: recs(user)["variant"] for user in users}  # sticky
    assert 8 <= list(variants.values()).count("popular") <= 32
    popular = next(u for u, v in variants.items() if v == "popular")
    assert {i["reason"] for i in recs(popular)["items"]} == {"popular right now"}
    assert recs(popular)["fallback"] is False
    controls = [u for u, v in variants.items() if v == "control"]
    assert any({i["reason"] for i in recs(u)["items"]} != {"popular right now"}
               for u in controls)  # the model ranks for the control

    stopped = service_client.post("/api/v1/recs/experiments/api-popular/stop",
                                  json={"reason": "test over"})
    assert stopped.status_code == 200
    assert stopped.json()["experiment"]["status"] == "stopped"
    assert stopped.json()["audit"][-1] | {"at": None, "details": None} == {
        "at": None, "action": "stop", "reason": "test over", "details": None}
    assert eventually(lambda: recs(popular)["variant"] is None)
    assert service_client.get("/api/v1/recs/experiments/nope").status_code == 404

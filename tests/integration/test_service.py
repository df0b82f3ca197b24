"""The BentoML service on the trained champion, in process and under ``bentoml serve``."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
import redis
from starlette.testclient import TestClient

from recsys.events.event_log import EventLog
from recsys.platform.redis_server import resolve_redis, stop_embedded
from recsys.platform.settings import Settings
from tests.conftest import free_port, running_server
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(service_client: TestClient) -> TestClient:
    return service_client


def history(platform: Platform, user: str) -> set[str]:
    valid = pd.read_parquet(platform.settings.warehouse_dir / "validated_events")
    return set(valid.loc[valid["user_id"] == user, "item_id"])


def active_user(platform: Platform, rank: int = 0) -> str:
    valid = pd.read_parquet(platform.settings.warehouse_dir / "validated_events")
    return str(valid["user_id"].value_counts().index[rank])


def test_known_user_gets_personal_unseen_items(client: TestClient, platform: Platform) -> None:
    user = active_user(platform)
    body = client.get(f"/api/v1/recs/{user}", params={"limit": 7}).json()
    items = [item["item_id"] for item in body["items"]]
    assert len(items) == 7 and len(set(items)) == 7
    assert body["fallback"] is False
    assert not set(items) & history(platform, user)
    assert all(item["reason"] for item in body["items"])
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_explain_adds_the_rankers_contributions(client: TestClient, platform: Platform) -> None:
    user = active_user(platform, rank=2)
    plain = client.get(f"/api/v1/recs/{user}", params={"limit": 4}).json()
    body = client.get(f"/api/v1/recs/{user}", params={"limit": 4, "explain": "true"}).json()
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in plain["items"]]
    assert all(item["contributions"] is None for item in plain["items"])
    for item in body["items"]:
        assert item["reason_kind"] in {"seed_item", "similar_item", "new_item", "category",
                                       "popular"}
        assert (item["reason_item_id"] is not None) == (
            item["reason_kind"] in {"seed_item", "similar_item"})
        top = item["contributions"]
        assert 1 <= len(top) <= 5
        assert all(set(c) == {"feature", "value", "contribution"} for c in top)
        sizes = [abs(c["contribution"]) for c in top]
        assert sizes == sorted(sizes, reverse=True)


def test_contributions_explain_the_inputs_an_item_was_ranked_with(
        client: TestClient, platform: Platform) -> None:
    """An item's inputs (its generators' scores standardized over the user's whole candidate
    list) do not depend on how many items are listed, so neither do their contributions."""
    user = active_user(platform, rank=2)
    short, long = (client.get(f"/api/v1/recs/{user}", params={"limit": n, "explain": "true"})
                   .json()["items"] for n in (2, 8))
    by_item = {item["item_id"]: item["contributions"] for item in long}
    both = [item for item in short if item["item_id"] in by_item]  # exploration may differ
    assert both
    for item in both:
        assert item["contributions"] == by_item[item["item_id"]]


def test_recommend_api_matches_rest_route(client: TestClient, platform: Platform) -> None:
    user = active_user(platform, rank=1)
    rest = client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
    api = client.post("/recommend", json={"user_id": user, "num_items": 5}).json()
    assert [i["item_id"] for i in api["items"]] == [i["item_id"] for i in rest["items"]]
    assert api["model_version"] == rest["model_version"]


def test_unknown_user_gets_popular_items_flagged_as_fallback(client: TestClient) -> None:
    body = client.get("/api/v1/recs/never-seen-user", params={"limit": 4}).json()
    assert body["fallback"] is True
    assert body["fallback_reason"] == "unknown user"
    assert len(body["items"]) == 4


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": [{"event_id": "e", "user_id": "u1", "item_id": "i1", "event_type": "like",
                      "timestamp": "2026-11-20T10:00:00Z"}]}, "event_type"),
        ({"events": [{"event_id": "e", "user_id": "u1", "item_id": "i1", "event_type": "view",
                      "timestamp": "2026-11-20T10:00:00"}]}, "timestamp"),
        ({"events": [{"event_id": "e", "user_id": "u1", "event_type": "view",
                      "timestamp": "2026-11-20T10:00:00Z"}]}, "item_id"),
        ({"event_id": "e", "user_id": "u1", "item_id": "i1", "event_type": "view",
          "timestamp": "yesterday"}, "timestamp"),
    ],
)
def test_malformed_event_gets_422_naming_the_field(
    client: TestClient, payload: dict, field: str
) -> None:
    response = client.post("/events", json=payload)
    assert response.status_code == 422
    # Only the bad field: the body's shape (batch or one event) picks the schema to report.
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]


def test_malformed_recommend_gets_422(client: TestClient) -> None:
    response = client.post("/recommend", json={"num_items": 3})
    assert response.status_code == 422
    assert "user_id" in response.text


def test_posted_event_is_logged_and_excluded_from_the_next_response(
    client: TestClient, platform: Platform
) -> None:
    user = active_user(platform, rank=2)
    top = client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()["items"][0]["item_id"]
    now = pd.Timestamp.now(tz="UTC")
    event = {"event_id": f"it-{now.value}", "user_id": user, "item_id": top,
             "event_type": "view", "timestamp": now.isoformat()}
    response = client.post("/events", json={"events": [event]})
    assert response.status_code == 202, response.text
    after = client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
    assert top not in [item["item_id"] for item in after["items"]]
    logged = EventLog(platform.settings.event_log_dir).read_day(now.date())
    assert event["event_id"] in set(logged["event_id"])


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"model": True, "redis": True}


def test_bentoml_serve_answers_over_http(platform: Platform, tmp_path) -> None:  # noqa: ANN001
    """The real server process: ``bentoml serve`` on the champion, queried over HTTP."""
    port = free_port()
    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    # Its own metrics folder: `bentoml serve` empties it at start, which would hide the
    # metrics of the in-process service of the other tests.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with running_server(
        [bentoml, "serve", "serving.service:RecommendationService", "--port", str(port)],
        f"http://127.0.0.1:{port}/health/ready", timeout=120, env=env,
    ):
        user = active_user(platform)
        body = httpx.get(f"http://127.0.0.1:{port}/api/v1/recs/{user}?limit=3", timeout=10,
                         headers=platform.headers).json()
        assert len(body["items"]) == 3 and body["fallback"] is False
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200


# --- Caching, filters, control endpoints, degradation and hot reload -----------------------


def test_second_request_is_cached_until_the_users_next_event(
    client: TestClient, platform: Platform
) -> None:
    user = active_user(platform, rank=3)
    first = client.get(f"/api/v1/recs/{user}", params={"limit": 6}).json()
    deadline = time.monotonic() + 5  # the cache writes behind the response
    while not (second := client.get(f"/api/v1/recs/{user}", params={"limit": 6}).json())["cached"]:
        assert time.monotonic() < deadline, "the response was never cached"
        time.sleep(0.01)
    assert second["items"] == first["items"]
    assert second["latency_ms"] >= 0
    now = pd.Timestamp.now(tz="UTC")
    event = {"event_id": f"cache-{now.value}", "user_id": user, "item_id": "i1",
             "event_type": "click", "timestamp": now.isoformat()}
    assert client.post("/events", json=event).status_code == 202  # a single event, no batch
    assert client.get(f"/api/v1/recs/{user}", params={"limit": 6}).json()["cached"] is False


def test_filters_keep_only_matching_items(client: TestClient, platform: Platform) -> None:
    user = active_user(platform, rank=4)
    catalog = pd.read_parquet(platform.settings.warehouse_dir / "catalog")
    category = str(catalog["categories"].explode().value_counts().index[0])
    body = client.get(f"/api/v1/recs/{user}",
                      params={"limit": 5, "category": category, "max_price": 30}).json()
    assert body["items"]
    assert all(category in item["categories"] and item["price"] <= 30 for item in body["items"])
    api = client.post("/recommend", json={
        "user_id": user, "num_items": 5, "context": {"device": "mobile"},
        "filters": {"categories": [category], "max_price": 30},
        "diversity": 0.3, "max_per_category": 5,
    })
    assert api.status_code == 200, api.text
    assert all(category in item["categories"] for item in api.json()["items"])


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"user_id": "u1", "num_items": 0}, "num_items"),
     ({"user_id": "u1", "filters": {"max_price": -1}}, "max_price"),
     ({"user_id": "u1", "diversity": 2}, "diversity")],
)
def test_malformed_recommend_options_get_422_naming_the_field(
    client: TestClient, payload: dict, field: str
) -> None:
    response = client.post("/recommend", json=payload)
    assert response.status_code == 422
    assert field in response.text


def test_popular_type_and_experiment_id(client: TestClient, platform: Platform) -> None:
    user = active_user(platform)
    body = client.get(f"/api/v1/recs/{user}",
                      params={"type": "popular", "experiment_id": "exp-7", "limit": 3}).json()
    assert body["experiment_id"] == "exp-7" and len(body["items"]) == 3
    assert not {i["item_id"] for i in body["items"]} & history(platform, user)
    assert client.get(f"/api/v1/recs/{user}", params={"type": "other"}).status_code == 422


def test_models_endpoints_report_the_registry(client: TestClient) -> None:
    listing = client.get("/api/v1/recs/models").json()
    champion = [v for v in listing["versions"] if "champion" in v["aliases"]]
    assert champion and champion[0]["serving"] is True and champion[0]["metrics"]
    one = client.get("/api/v1/recs/models/champion").json()
    assert one["version"] == listing["serving_version"] == champion[0]["version"]
    assert client.get(f"/api/v1/recs/models/{one['version']}").json()["aliases"]
    assert client.get("/api/v1/recs/models/999").status_code == 404


def test_train_without_dagster_webserver_is_503(client: TestClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.service as service_module

    launch = service_module.launch_retrain
    nowhere = free_port()  # never the developer's running Dagster UI
    monkeypatch.setattr(
        service_module, "launch_retrain",
        lambda settings: launch(settings.model_copy(update={"dagster_port": nowhere})),
    )
    response = client.post("/api/v1/recs/train")
    assert response.status_code == 503
    assert "Dagster webserver" in response.json()["detail"]


def serve(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """``bentoml serve`` of the service with ``env`` added; returns the process and URL."""
    port = free_port()
    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    proc = subprocess.Popen(
        [bentoml, "serve", "serving.service:RecommendationService", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("bentoml serve did not become ready")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def own_redis(platform: Platform, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Settings, str]]:
    """``bentoml serve`` whose online store and cache are a dedicated Valkey we can stop."""
    valkey = Settings(data_dir=tmp_path_factory.mktemp("own-valkey"),
                      embedded_redis_port=free_port(), redis_url=None)  # not the session's
    url = resolve_redis(valkey).url
    assert resolve_redis(valkey).embedded
    # The platform's online features, copied (Feast keeps one hash per entity key).
    source, target = redis.Redis.from_url(os.environ["REDIS_URL"]), redis.Redis.from_url(url)
    for key in source.scan_iter(count=1000):
        if source.type(key) == b"hash" and not key.startswith(b"recsys:recs:"):
            target.hset(key, mapping=source.hgetall(key))
    proc, base = serve({
        "REDIS_URL": url, "RECSYS_SERVING_REDIS_RETRY_SECONDS": "0.2",
        "RECSYS_SERVING_MODEL_POLL_SECONDS": "0",
        "RECSYS_SERVING_STAGE_SAMPLE": "1",  # every stage observed: the metrics test reads them
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("own-prometheus")),
    })
    try:
        yield valkey, base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        stop_embedded(valkey)


def test_metrics_report_latency_stages_cache_and_model(
    own_redis: tuple[Settings, str], platform: Platform
) -> None:
    _, base = own_redis
    with httpx.Client(base_url=base, timeout=10, headers=platform.headers) as http:
        for _ in range(2):
            http.get(f"/api/v1/recs/{active_user(platform, rank=5)}").raise_for_status()
        http.get("/api/v1/recs/never-seen-user-metrics").raise_for_status()
        text = http.get("/metrics").text
    for name in ('recsys_recommend_seconds_bucket{', 'recsys_stage_seconds_bucket{',
                 'recsys_cache_requests_total{result="hit"}', "recsys_fallbacks_total{",
                 "recsys_model_version{"):
        assert name in text, name
    # BentoML's traffic metrics are labelled by route, not by user (one series per route)
    assert 'endpoint="/api/v1/recs/{user_id}"' in text
    assert "never-seen-user-metrics" not in text


def test_redis_stopped_mid_test_gives_fallbacks_then_recovers(
    own_redis: tuple[Settings, str], platform: Platform
) -> None:
    valkey, base = own_redis
    client = httpx.Client(base_url=base, timeout=10, headers=platform.headers)
    user = active_user(platform, rank=6)
    assert client.get(f"/api/v1/recs/{user}").json()["fallback"] is False
    stop_embedded(valkey)
    started = time.perf_counter()
    for limit in (3, 4, 5):
        response = client.get(f"/api/v1/recs/{user}", params={"limit": limit})
        assert response.status_code == 200
        body = response.json()
        assert body["fallback"] is True and len(body["items"]) == limit
        assert body["fallback_reason"] == "online store unavailable"
    api = client.post("/recommend", json={"user_id": user, "num_items": 2})
    assert api.status_code == 200 and api.json()["fallback"] is True
    now = pd.Timestamp.now(tz="UTC")
    event = {"event_id": f"down-{now.value}", "user_id": user, "item_id": "i2",
             "event_type": "view", "timestamp": now.isoformat()}
    posted = client.post("/events", json=event)
    assert posted.status_code == 202 and posted.json()["pushed_users"] == 0
    assert client.get("/health/ready").status_code == 503
    assert time.perf_counter() - started < 5, "fallbacks must not wait on Redis"

    resolve_redis(valkey)  # restart; the snapshot brings the features back
    deadline = time.monotonic() + 10
    while client.get(f"/api/v1/recs/{user}").json()["fallback"]:
        assert time.monotonic() < deadline, "no recovery after Redis came back"
        time.sleep(0.1)
    assert client.get("/health/ready").status_code == 200
    client.close()


def platform_experiment(platform: Platform, client) -> str:  # noqa: ANN001
    """The pipeline's MLflow experiment (artifacts under .data, not ./mlruns)."""
    from recsys.evaluation.tracking import ensure_experiment

    return ensure_experiment(client, "recsys", platform.settings.mlflow_artifact_dir)


def test_champion_swap_under_concurrent_requests_fails_none(platform: Platform) -> None:
    import mlflow
    from mlflow import MlflowClient

    from recsys.models.registry import CHAMPION, alias_version, log_recommender, promote
    from serving.service import RecommendationService

    service = RecommendationService()
    name = platform.settings.model_name
    mlflow.set_tracking_uri(platform.settings.tracking_uri)
    registry = MlflowClient()
    former = alias_version(registry, name, CHAMPION)
    assert former is not None and service.models.engine.model_version == str(former.version)
    with mlflow.start_run(experiment_id=platform_experiment(platform, registry)) as run:
        pass
    new = log_recommender(service.models.engine.recommender, name, run.info.run_id)
    users = [active_user(platform, rank=r) for r in range(8)] + ["never-seen-user"]
    errors: list[BaseException] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer(offset: int) -> None:
        i = offset
        while not stop.is_set():
            try:
                body = json.loads(service.answer(service.query(users[i % len(users)], 5)))
                assert len(body["items"]) == 5
                versions.add(body["model_version"])
            except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)
            i += 1

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        promote(registry, name, new.version)
        assert service.models.check() == "champion"
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        promote(registry, name, former.version)
        service.models.stop()
    assert not errors, errors[:3]
    assert service.models.engine.model_version == str(new.version)
    assert {str(former.version), str(new.version)} <= versions


def test_ab_experiment_serves_each_user_the_model_of_its_arm(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow import MlflowClient

    from recsys.models.registry import CHALLENGER, CHAMPION, alias_version, log_recommender
    from serving.config import get_serving_settings
    from serving.service import RecommendationService

    name = platform.settings.model_name
    mlflow.set_tracking_uri(platform.settings.tracking_uri)
    registry = MlflowClient()
    champion = alias_version(registry, name, CHAMPION)
    former_challenger = alias_version(registry, name, CHALLENGER)
    assert champion is not None
    monkeypatch.setenv("RECSYS_SERVING_EXPERIMENTS",
                       json.dumps({"ab": {"champion": 1, "challenger": 1}}))
    get_serving_settings.cache_clear()
    with mlflow.start_run(experiment_id=platform_experiment(platform, registry)) as run:
        pass
    serving_champion = RecommendationService().models
    serving_champion.stop()
    challenger = log_recommender(serving_champion.engine.recommender, name, run.info.run_id)
    registry.set_registered_model_alias(name, CHALLENGER, str(challenger.version))
    try:
        service = RecommendationService()
        versions = {"champion": str(champion.version), "challenger": str(challenger.version)}
        users = [active_user(platform, rank=r) for r in range(40)]
        seen = {}
        for user in users:
            first = json.loads(service.answer(service.query(user, 5, experiment_id="ab")))
            assert service.cache.flush()
            again = json.loads(service.answer(service.query(user, 5, experiment_id="ab")))
            assert first["variant"] == again["variant"] and again["cached"]
            assert first["model_version"] == versions[first["variant"]]
            seen[user] = first["variant"]
        assert 8 <= sum(v == "challenger" for v in seen.values()) <= 32
        outside = json.loads(service.answer(service.query(users[0], 5)))
        assert outside["variant"] is None and outside["model_version"] == versions["champion"]
        service.models.stop()
    finally:
        get_serving_settings.cache_clear()
        if former_challenger is not None:
            registry.set_registered_model_alias(name, CHALLENGER, str(former_challenger.version))


def test_new_user_is_personalized_from_the_items_of_their_session(
    client: TestClient, platform: Platform
) -> None:
    user = f"visitor-{time.time_ns()}"
    before = client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
    assert before["fallback"] is True and before["fallback_reason"] == "unknown user"
    viewed = [item["item_id"] for item in before["items"][:2]]
    now = pd.Timestamp.now(tz="UTC")
    events = [{"event_id": f"{user}-{i}", "user_id": user, "item_id": item, "event_type": "view",
               "timestamp": (now + pd.Timedelta(seconds=i)).isoformat()}
              for i, item in enumerate(viewed)]
    assert client.post("/events", json={"events": events}).status_code == 202
    after = client.get(f"/api/v1/recs/{user}", params={"limit": 5}).json()
    assert after["fallback"] is False, after
    ids = [item["item_id"] for item in after["items"]]
    assert len(ids) == 5 and not set(ids) & set(viewed)
    assert ids != [item["item_id"] for item in before["items"]]
    assert any(item["reason"].startswith("because you interacted with") for item in after["items"])


def test_docs_describe_the_rest_api(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/recs/{user_id}", "/events", "/api/v1/recs/train"} <= set(paths)


def test_train_launches_the_dagster_retrain_job_and_returns_its_run(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in the module: the run it starts retrains and registers a new model version."""
    from dagster import DagsterInstance, DagsterRunStatus

    import serving.service as service_module
    from recsys.platform.settings import PROJECT_ROOT

    port = free_port()
    dagster_webserver = os.path.join(os.path.dirname(sys.executable), "dagster-webserver")
    with running_server(
        [dagster_webserver, "-w", str(PROJECT_ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        f"http://127.0.0.1:{port}/server_info", cwd=PROJECT_ROOT,
    ):
        launch = service_module.launch_retrain
        monkeypatch.setattr(
            service_module, "launch_retrain",
            lambda settings: launch(settings.model_copy(update={"dagster_port": port})),
        )
        response = client.post("/api/v1/recs/train")
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["job"] == "retrain_job"
        instance = DagsterInstance.get()
        deadline = time.monotonic() + 900
        while True:
            run = instance.get_run_by_id(body["run_id"])
            assert run is not None and run.job_name == "retrain_job"
            if run.is_finished or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert run.status == DagsterRunStatus.SUCCESS


def test_a_user_token_reads_only_its_own_recommendations(client: TestClient,
                                                          platform: Platform) -> None:
    import time as clock

    import jwt

    from tests.conftest import JWT_SECRET

    alice, bob = active_user(platform, rank=2), active_user(platform, rank=3)
    token = jwt.encode({"sub": alice, "exp": int(clock.time()) + 60}, JWT_SECRET,
                       algorithm="HS256")
    as_alice = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/recs/{alice}", headers=as_alice).status_code == 200
    refused = client.get(f"/api/v1/recs/{bob}", headers=as_alice)
    assert refused.status_code == 403 and alice in refused.json()["detail"]
    assert client.post("/recommend", headers=as_alice,
                       json={"user_id": bob, "num_items": 3}).status_code == 403
    assert client.get("/api/v1/recs/models", headers=as_alice).status_code == 403
    anonymous = client.get(f"/api/v1/recs/{alice}", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_a_restart_after_a_rollback_serves_the_champion(platform: Platform) -> None:
    import mlflow
    from mlflow import MlflowClient

    from recsys.models.registry import CHAMPION, alias_version, log_recommender, promote, rollback
    from serving.service import RecommendationService

    name = platform.settings.model_name
    mlflow.set_tracking_uri(platform.settings.tracking_uri)
    registry = MlflowClient()
    champion = str(alias_version(registry, name, CHAMPION).version)
    service = RecommendationService()
    service.models.stop()
    with mlflow.start_run(experiment_id=platform_experiment(platform, registry)) as run:
        pass
    newer = log_recommender(service.models.engine.recommender, name, run.info.run_id)
    promote(registry, name, newer.version)
    assert str(rollback(registry, name)) == champion
    restarted = RecommendationService()
    restarted.models.stop()
    assert restarted.models.engine.model_version == champion

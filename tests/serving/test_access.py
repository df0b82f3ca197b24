"""The service's door: body size, credentials, roles, user scope and rate limits, in front of
a small app that echoes what reaches it (the route rules are the service's own)."""

import json
import time

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.access import Access, AccessMiddleware, match
from serving.auth import Authenticator, KeyStore, Role, TokenVerifier
from serving.config import AuthSettings
from serving.rate_limits import RateLimiter
from tests.conftest import free_port

SECRET = "t" * 32


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "body": (await request.body()).decode()})


APP = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])


def make_client(tmp_path, redis_url: str, **settings) -> tuple[TestClient, KeyStore]:  # noqa: ANN001
    config = AuthSettings(**{"user_rate_limit": "5/minute", "key_rate_limit": "100/minute",
                             "max_body_bytes": 2048, **settings})
    keys = KeyStore(tmp_path / "keys.json")
    access = Access(config, Authenticator(keys, TokenVerifier(["HS256"], SECRET)),
                    RateLimiter(redis_url))
    return TestClient(AccessMiddleware(APP, access=lambda: access)), keys


def user_token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")


def test_rules_match_routes_in_order() -> None:
    assert match("GET", "/api/v1/recs/models")[0].role == Role.ADMIN
    rule, params = match("GET", "/api/v1/recs/u1")
    assert rule.role == Role.READER and params == {"user_id": "u1"}
    assert match("POST", "/events")[0].role == Role.WRITER
    assert match("DELETE", "/events")[0] is None


def test_health_is_open_and_everything_else_needs_credentials(tmp_path, redis_url) -> None:
    client, keys = make_client(tmp_path, redis_url)
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200  # public by default
    for method, path in (("GET", "/api/v1/recs/u1"), ("POST", "/recommend"),
                         ("POST", "/events"), ("POST", "/api/v1/recs/train"),
                         ("GET", "/api/v1/recs/models"), ("GET", "/unlisted")):
        response = client.request(method, path, json={"user_id": "u1"})
        assert response.status_code == 401, (method, path)
        assert response.json()["error"] == "unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")
    closed, _ = make_client(tmp_path, redis_url, public_metrics=False)
    assert closed.get("/metrics").status_code == 401


def test_roles_and_user_scope_give_403(tmp_path, redis_url) -> None:
    client, keys = make_client(tmp_path, redis_url)
    _, reader = keys.create(Role.READER, "app")
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert client.get("/api/v1/recs/anyone", headers=as_reader).status_code == 200
    refused = client.post("/events", headers=as_reader, json={"user_id": "u1"})
    assert refused.status_code == 403 and "writer" in refused.json()["detail"]
    assert client.post("/api/v1/recs/train", headers=as_reader).status_code == 403
    alice = {"Authorization": f"Bearer {user_token('alice')}"}
    assert client.get("/api/v1/recs/alice", headers=alice).status_code == 200
    assert client.get("/api/v1/recs/bob", headers=alice).status_code == 403
    assert client.post("/recommend", headers=alice, json={"user_id": "bob"}).status_code == 403
    batch = {"events": [{"user_id": "alice"}, {"user_id": "bob"}]}
    assert client.post("/events", headers=alice, json=batch).status_code == 403
    mine = client.post("/events", headers=alice, json={"events": [{"user_id": "alice"}]})
    assert mine.status_code == 200
    assert json.loads(mine.json()["body"]) == {"events": [{"user_id": "alice"}]}  # replayed


def test_bodies_over_the_cap_get_413(tmp_path, redis_url) -> None:
    client, keys = make_client(tmp_path, redis_url)
    _, writer = keys.create(Role.WRITER, "app")
    big = {"events": [{"user_id": "u1", "pad": "x" * 4096}]}
    response = client.post("/events", headers={"X-API-Key": writer}, json=big)
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"

    def chunks():  # no content-length: the cap holds for streamed bodies too
        for _ in range(10):
            yield b"x" * 512

    streamed = client.post("/events", headers={"X-API-Key": writer}, content=chunks())
    assert streamed.status_code == 413


def test_each_user_gets_exactly_the_limit_then_429(tmp_path, redis_url) -> None:
    client, keys = make_client(tmp_path, redis_url)
    _, reader = keys.create(Role.READER, "app")
    headers = {"Authorization": f"Bearer {reader}"}
    user = f"limited-{time.time_ns()}"
    codes = [client.get(f"/api/v1/recs/{user}", headers=headers) for _ in range(8)]
    assert [r.status_code for r in codes] == [200] * 5 + [429] * 3
    assert codes[0].headers["ratelimit-limit"] == "5"
    assert codes[5].headers["ratelimit-remaining"] == "0"
    refused = codes[5]
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    other = client.get(f"/api/v1/recs/{user}-other", headers=headers)
    assert other.status_code == 200  # another user has a window of their own


def test_without_redis_the_limiter_fails_open_to_an_in_process_limit(tmp_path) -> None:
    client, keys = make_client(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    _, reader = keys.create(Role.READER, "app")
    headers = {"Authorization": f"Bearer {reader}"}
    codes = [client.get("/api/v1/recs/u1", headers=headers).status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2


def test_the_openapi_document_states_the_rules() -> None:
    from serving.access import document_access

    schema = {"paths": {
        "/health": {"get": {"responses": {"200": {"description": "ok"}}}},
        "/events": {"post": {"responses": {"202": {"description": "accepted"}}}},
        "/api/v1/recs/{user_id}": {"get": {"responses": {"200": {"description": "ok"}}}},
    }}
    document_access(schema)
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert "security" not in schema["paths"]["/health"]["get"]
    events = schema["paths"]["/events"]["post"]
    assert events["security"] and {"401", "403", "413", "429"} <= set(events["responses"])
    assert "413" not in schema["paths"]["/api/v1/recs/{user_id}"]["get"]["responses"]
    assert document_access(schema) is schema  # idempotent

"""The door of the service: body size, credentials, role, user scope and rate limits, checked
before a request reaches a route.

Every route is listed in :data:`RULES` with the role it needs and where its users are (the
path, or the JSON body); a path that matches no rule needs credentials of any role and is
then the app's to answer (404). ``/health`` stays open; ``/metrics`` and the API reference
are open or not by configuration. A refusal is JSON naming the reason: 401 (who are you?),
403 (not allowed), 413 (body too large), 429 (too many requests, with ``Retry-After`` and
``RateLimit-*`` headers). The authenticated caller is left in ``scope["state"]`` for routes.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from starlette.routing import compile_path

from recsys.platform.redis_server import resolve_redis
from recsys.platform.settings import get_settings
from serving.auth import Authenticator, AuthError, KeyStore, Principal, Role, TokenVerifier
from serving.config import AuthSettings, get_auth_settings
from serving.metrics import stage
from serving.rate_limits import Fold, RateLimiter, Verdict

logger = logging.getLogger(__name__)

PRINCIPAL = "principal"  # key in scope["state"]
PENDING_LIMITS = "recsys.limits"  # key in scope["state"]: a Fold the app must check
Users = Callable[[dict[str, str], Any], list[str]]


def _path_user(params: dict[str, str], body: Any) -> list[str]:
    return [params["user_id"]]


def _body_user(params: dict[str, str], body: Any) -> list[str]:
    user = body.get("user_id") if isinstance(body, dict) else None
    return [user] if isinstance(user, str) else []


def _event_users(params: dict[str, str], body: Any) -> list[str]:
    events = body.get("events", [body]) if isinstance(body, dict) else []
    users = [e.get("user_id") for e in events if isinstance(e, dict)] if isinstance(
        events, list) else []
    return sorted({u for u in users if isinstance(u, str)})


@dataclass(frozen=True)
class Rule:
    """``role`` None: open to all; "metrics" / "docs": open when configured so."""

    method: str
    path: str
    role: Role | str | None
    users: Users | None = None
    foldable: bool = False  # its limits may be left to the route's lookup (AccessMiddleware)

    @property
    def regex(self) -> re.Pattern[str]:
        return compile_path(self.path)[0]


RULES = [
    Rule("GET", "/health", None),
    Rule("GET", "/health/ready", None),
    Rule("GET", "/livez", None),
    Rule("GET", "/readyz", None),
    Rule("GET", "/healthz", None),
    Rule("GET", "/metrics", "metrics"),
    Rule("GET", "/", "docs"),
    Rule("GET", "/docs", "docs"),
    Rule("GET", "/docs.json", "docs"),
    Rule("GET", "/openapi.json", "docs"),
    Rule("GET", "/demo", "docs"),
    Rule("GET", "/demo/{rest:path}", "docs"),
    Rule("GET", "/static/{rest:path}", "docs"),
    Rule("GET", "/api/v1/recs/models", Role.ADMIN),
    Rule("GET", "/api/v1/recs/models/{version}", Role.ADMIN),
    Rule("POST", "/api/v1/recs/train", Role.ADMIN),
    Rule("GET", "/api/v1/recs/experiments", Role.ADMIN),
    Rule("POST", "/api/v1/recs/experiments", Role.ADMIN),
    Rule("GET", "/api/v1/recs/experiments/{experiment_id}", Role.ADMIN),
    Rule("POST", "/api/v1/recs/experiments/{experiment_id}/stop", Role.ADMIN),
    Rule("GET", "/api/v1/recs/{user_id}", Role.READER, _path_user, foldable=True),
    Rule("POST", "/recommend", Role.READER, _body_user),
    Rule("POST", "/events", Role.WRITER, _event_users),
]
_COMPILED = [(rule, rule.regex) for rule in RULES]


def match(method: str, path: str) -> tuple[Rule | None, dict[str, str]]:
    """The first rule for ``method`` and ``path`` (HEAD as GET) and the path parameters."""
    method = "GET" if method == "HEAD" else method
    for rule, regex in _COMPILED:
        found = regex.match(path)
        if found and rule.method == method:
            return rule, found.groupdict()
    return None, {}


class Access:
    """Authentication, the route rules and the rate limits of one service process."""

    def __init__(self, settings: AuthSettings, authenticator: Authenticator,
                 limiter: RateLimiter | None):
        self.settings, self.authenticator, self.limiter = settings, authenticator, limiter

    def open_role(self, role: Role | str | None) -> bool:
        return role is None or (role == "metrics" and self.settings.public_metrics) or (
            role == "docs" and self.settings.public_docs)

    def admit(self, rule: Rule | None, params: dict[str, str], body: Any,
              headers: dict[bytes, bytes], fold: bool = False
              ) -> tuple[Principal | None, Verdict | Fold | None]:
        """The caller and the user's rate-limit verdict; raises :class:`AuthError`. With
        ``fold``, a foldable rule's limits come back unchecked (a :class:`Fold`) when the
        limiter can hand them to another script."""
        role = rule.role if rule is not None else None
        if rule is not None and self.open_role(role):
            return None, None
        principal = self.authenticator.authenticate(
            _header(headers, b"authorization"), _header(headers, b"x-api-key"))
        users = rule.users(params, body) if rule is not None and rule.users else []
        if isinstance(role, Role):
            principal.check(role, users)
        elif role in ("metrics", "docs"):
            principal.check(Role.READER)
        return principal, self._limit(principal, users, fold and rule is not None
                                      and rule.foldable)

    def _limit(self, principal: Principal, users: list[str], fold: bool = False
               ) -> Verdict | Fold | None:
        if self.limiter is None or not self.authenticator.enabled:
            return None
        limits = (self.settings.key_rate_limit, principal.subject,
                  self.settings.user_rate_limit, users)
        folded = self.limiter.fold(*limits) if fold else None
        return folded if folded is not None else self.limiter.admit(*limits)


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


@lru_cache(maxsize=1)
def get_access() -> Access:
    """The process's access control, built from the settings on first use."""
    settings, platform = get_auth_settings(), get_settings()
    keys = KeyStore(settings.keys_file or platform.data_dir / "auth" / "keys.json")
    tokens = TokenVerifier(
        settings.jwt_algorithms,
        settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        settings.jwt_public_key_file, settings.jwt_jwks_file,
        settings.jwt_audience, settings.jwt_issuer)
    enabled = settings.mode == "on"
    if not enabled:
        logger.warning("RECSYS_AUTH=off: every request is served without authentication")
    limiter = RateLimiter(resolve_redis(platform).url) if enabled else None
    return Access(settings, Authenticator(keys, tokens, enabled), limiter)


async def _refuse(send: Any, status: int, error: str, detail: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class AccessMiddleware:
    """ASGI middleware applying :class:`Access` to every HTTP request.

    With ``fold``, the rate limits of a foldable rule (``GET /api/v1/recs/{user_id}``) are
    left in ``scope["state"][PENDING_LIMITS]`` (a :class:`~serving.rate_limits.Fold`) for
    the app behind to check in its own round trip to Redis, which it must do before
    answering (:func:`refuse_over_limit` sends the refusal, :func:`limit_headers` the
    headers of an admitted request); the service's :class:`serving.fast_recs.FastRecs`
    does. Otherwise each request's limits cost a round trip of their own here.
    """

    def __init__(self, app: Any, access: Callable[[], Access] = get_access,
                 fold: bool = False):
        self.app, self.access, self.fold = app, access, fold

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        access = self.access()
        headers = dict(scope.get("headers") or [])
        limit = access.settings.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _refuse(send, 413, "body_too_large",
                                 f"the request body may hold at most {limit} bytes")
        rule, params = match(scope["method"], scope["path"])
        raw = b""
        if scope["method"] in ("POST", "PUT", "PATCH"):
            raw, complete = await _read_body(receive, limit)
            if not complete:
                return await _refuse(send, 413, "body_too_large",
                                     f"the request body may hold at most {limit} bytes")
            receive = _replay(raw)
        try:
            with stage("access", {}):  # credentials and the rate limits' round trip
                principal, verdict = access.admit(rule, params, _json(raw), headers, self.fold)
        except AuthError as exc:
            challenge = [(b"www-authenticate", b'Bearer realm="recsys"')] if exc.status == 401 \
                else []
            return await _refuse(send, exc.status, exc.error, exc.detail, challenge)
        if isinstance(verdict, Fold):
            scope.setdefault("state", {})[PENDING_LIMITS] = verdict
            verdict = None
        elif verdict is not None and not verdict.allowed:
            return await refuse_over_limit(send, verdict)
        if principal is not None:
            scope.setdefault("state", {})[PRINCIPAL] = principal
        if verdict is None:
            return await self.app(scope, receive, send)
        return await self.app(scope, receive, limit_headers(send, verdict))


async def refuse_over_limit(send: Any, verdict: Verdict) -> None:
    """Answer 429 for a refused ``verdict``."""
    await _refuse(send, 429, "rate_limited",
                  f"at most {verdict.limit} requests per window; retry in "
                  f"{max(verdict.reset_seconds, 1)} s", verdict.headers())


def limit_headers(send: Any, verdict: Verdict) -> Callable[[Any], Any]:
    """``send`` adding the ``RateLimit-*`` headers of an admitted ``verdict``."""
    extra = verdict.headers()

    async def send_with_limits(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with_limits


async def _read_body(receive: Any, limit: int) -> tuple[bytes, bool]:
    """The whole body, or (what was read, False) once it exceeds ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes) -> Callable[[], Any]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None  # the route answers the malformed body with its own 422


_REFUSAL = {"type": "object", "properties": {"error": {"type": "string"},
                                             "detail": {"type": "string"}},
            "required": ["error", "detail"]}
_REFUSALS = {
    "401": "No, or unknown, credentials.",
    "403": "The caller's role, or the user it may act for, does not allow this.",
    "429": "Too many requests for this user or key; see Retry-After.",
}


def document_access(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the rules to an OpenAPI document: the two ways to authenticate, and for every
    protected operation its security requirement and refusals (401, 403, 429, and 413 for a
    body). Idempotent."""
    components = schema.setdefault("components", {})
    if "securitySchemes" in components:
        return schema
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An API key (`rk_…`) or a JWT whose `sub` is the user."},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    components.setdefault("schemas", {})["Refusal"] = _REFUSAL
    refusal = {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Refusal"}}}}
    for rule in RULES:
        operation = schema.get("paths", {}).get(rule.path, {}).get(rule.method.lower())
        if operation is None or not isinstance(rule.role, Role):
            continue
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        responses = operation.setdefault("responses", {})
        codes = {**_REFUSALS, **({"413": "The body is larger than allowed."}
                                  if rule.method == "POST" else {})}
        for code, text in codes.items():
            responses.setdefault(code, {"description": text, **refusal})
    return schema


def secure_openapi(app: Any) -> None:
    """Have ``app``'s OpenAPI document state the access rules (:func:`document_access`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        return document_access(build())

    app.openapi = openapi

"""Who is calling and what they may do: API keys for services, JWT bearer tokens for end users.

Roles: ``reader`` gets recommendations, ``writer`` posts events, ``admin`` does both and may
also train, read the registry and manage experiments. A service key (``rk_<id>_<secret>``,
created with ``python -m serving.keys``) acts for any user; an end-user token (a JWT whose
``sub`` is the user id) acts only for that user. Keys are stored as SHA-256 digests of their
random secret (never the secret itself) in a JSON file that the service re-reads when it
changes, so a revocation takes effect without a restart. Tokens are checked with PyJWT
against the algorithms, key, audience and issuer the configuration fixes. A credential once
verified is trusted for :data:`VERIFIED_SECONDS` (a token never past its ``exp``): a
revocation takes effect within that second in every worker, and the request path skips the
key file's ``stat``, the digest and the JWT's decoding and signature check on repeat callers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import jwt

logger = logging.getLogger(__name__)

KEY_PREFIX = "rk_"
#: How long a verified credential is trusted without being checked again (seconds).
VERIFIED_SECONDS = 1.0
#: Distinct credentials kept verified at once (the table is emptied when it is full).
MAX_VERIFIED = 4096


class Role(StrEnum):
    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"


#: What a role may do: admin includes the other two.
GRANTS: dict[Role, frozenset[Role]] = {
    Role.READER: frozenset({Role.READER}),
    Role.WRITER: frozenset({Role.WRITER}),
    Role.ADMIN: frozenset(Role),
}
#: Roles of an end-user token without a ``roles`` claim: its own lists and events.
USER_ROLES = frozenset({Role.READER, Role.WRITER})


class AuthError(Exception):
    """A request is refused: ``status`` 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``user_id`` is the only user it may act for (None: any)."""

    subject: str
    roles: frozenset[Role]
    user_id: str | None
    kind: str  # "key", "token" or "anonymous" (authentication off)

    def may(self, role: Role) -> bool:
        return any(role in GRANTS[r] for r in self.roles)

    def check(self, role: Role, users: Iterable[str] = ()) -> None:
        """Raise 403 unless the caller has ``role`` and may act for every one of ``users``."""
        if not self.may(role):
            raise AuthError(403, "forbidden",
                            f"this operation needs the {role.value!r} role; the caller has "
                            f"{sorted(r.value for r in self.roles)}")
        others = sorted({u for u in users if u != self.user_id}) if self.user_id else []
        if others:
            raise AuthError(403, "forbidden",
                            f"a token for user {self.user_id!r} cannot act for {others[:3]}")


ANONYMOUS = Principal("anonymous", frozenset({Role.ADMIN}), None, "anonymous")


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    name: str
    role: Role
    digest: str
    created_at: str
    revoked_at: str | None = None


def _digest(secret: str) -> str:
    # The secrets are 32 random bytes: a plain hash cannot be brute-forced, no salt needed.
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """API keys in a JSON file (digests only), re-read when the file changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._records: dict[str, KeyRecord] = {}

    def _load(self) -> dict[str, KeyRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                raw = json.loads(self.path.read_text() or "{}")
                self._records = {k: KeyRecord(**{**v, "role": Role(v["role"])})
                                 for k, v in raw.get("keys", {}).items()}
                self._stamp = stamp
            return self._records

    def _save(self, records: dict[str, KeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": {k: asdict(v) for k, v in records.items()}},
                                  indent=1))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def create(self, role: Role, name: str) -> tuple[KeyRecord, str]:
        """A new key: its record and the plaintext key, shown once and never stored."""
        key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        record = KeyRecord(key_id, name, Role(role), _digest(secret),
                           datetime.now(tz=UTC).isoformat(timespec="seconds"))
        records = dict(self._load())
        records[key_id] = record
        self._save(records)
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str) -> KeyRecord:
        records = dict(self._load())
        if key_id not in records:
            raise KeyError(f"no key {key_id!r}")
        revoked = KeyRecord(**{**asdict(records[key_id]),
                               "revoked_at": datetime.now(tz=UTC).isoformat(timespec="seconds")})
        records[key_id] = revoked
        self._save(records)
        return revoked

    def records(self) -> list[KeyRecord]:
        return list(self._load().values())

    def active(self) -> bool:
        return any(r.revoked_at is None for r in self._load().values())

    def verify(self, key: str) -> KeyRecord | None:
        """The active record of a plaintext key, None for a wrong, unknown or revoked one."""
        key_id, _, secret = key.removeprefix(KEY_PREFIX).partition("_")
        record = self._load().get(key_id)
        if record is None or record.revoked_at is not None or not secret:
            return None
        return record if hmac.compare_digest(record.digest, _digest(secret)) else None


class TokenVerifier:
    """JWT bearer tokens: the algorithms, key, audience and issuer are fixed by configuration.

    ``secret`` verifies HS* tokens; ``public_key_file`` (PEM) or ``jwks_file`` (a JWKS JSON,
    the key picked by the token's ``kid``) verify RS*/ES* tokens.
    """

    def __init__(self, algorithms: list[str], secret: str | None = None,
                 public_key_file: Path | None = None, jwks_file: Path | None = None,
                 audience: str | None = None, issuer: str | None = None):
        self.algorithms, self.secret = list(algorithms), secret
        self.audience, self.issuer = audience, issuer
        self.public_key = Path(public_key_file).read_text() if public_key_file else None
        self.jwks = jwt.PyJWKSet.from_json(Path(jwks_file).read_text()) if jwks_file else None

    @property
    def configured(self) -> bool:
        return bool(self.secret or self.public_key or self.jwks)

    def _key(self, token: str) -> object:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in self.algorithms:
            raise jwt.InvalidAlgorithmError(f"algorithm {header.get('alg')!r} is not accepted")
        if header["alg"].startswith("HS"):
            if not self.secret:
                raise jwt.InvalidKeyError("no secret for HMAC tokens")
            return self.secret
        if self.jwks is not None:
            kid = header.get("kid")
            for key in self.jwks.keys:
                if kid is None or key.key_id == kid:
                    return key.key
            raise jwt.InvalidKeyError(f"no key {kid!r} in the JWKS")
        if self.public_key is None:
            raise jwt.InvalidKeyError("no public key for asymmetric tokens")
        return self.public_key

    def verify(self, token: str) -> Principal:
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Principal, float]:
        """The caller of ``token`` and its expiry (``exp``, epoch seconds)."""
        try:
            claims = jwt.decode(
                token, self._key(token), algorithms=self.algorithms, audience=self.audience,
                issuer=self.issuer, options={"require": ["exp", "sub"],
                                             "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(401, "invalid_token", f"bearer token rejected: {exc}") from exc
        raw = claims.get("roles", claims.get("role"))
        names = [raw] if isinstance(raw, str) else list(raw or [])
        try:
            roles = frozenset(Role(r) for r in names) if names else USER_ROLES
        except ValueError as exc:
            raise AuthError(401, "invalid_token", f"unknown role in token: {exc}") from exc
        # An admin token is an operator's, not an end user's: it may act for anyone.
        user = None if Role.ADMIN in roles else str(claims["sub"])
        return Principal(str(claims["sub"]), roles, user, "token"), float(claims["exp"])


class Authenticator:
    """Turns request credentials (``Authorization: Bearer …`` or ``X-API-Key``) into a
    :class:`Principal`; ``enabled=False`` lets everyone in as an anonymous admin."""

    def __init__(self, keys: KeyStore, tokens: TokenVerifier, enabled: bool = True):
        self.keys, self.tokens, self.enabled = keys, tokens, enabled
        # credential -> (its caller, the monotonic time until which it is trusted)
        self._verified: dict[str, tuple[Principal, float]] = {}

    def require_credentials(self) -> None:
        """Secure by default: refuse to serve with authentication on and nothing to check."""
        if self.enabled and not self.keys.active() and not self.tokens.configured:
            raise RuntimeError(
                f"authentication is on but there is no API key in {self.keys.path} and no JWT "
                "key configured: create one with `python -m serving.keys create --role admin`, "
                "or set RECSYS_AUTH=off to serve without authentication")

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        credential = api_key
        if credential is None and authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthError(401, "unauthenticated",
                                "the Authorization header must be 'Bearer <key or token>'")
            credential = value.strip()
        if not credential:
            raise AuthError(401, "unauthenticated",
                            "credentials required: an API key (Authorization: Bearer rk_…, or "
                            "X-API-Key) or a bearer token")
        now = time.monotonic()
        verified = self._verified.get(credential)
        if verified is not None and now < verified[1]:
            return verified[0]
        principal, until = self._verify(credential, now)
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        self._verified[credential] = (principal, until)
        return principal

    def _verify(self, credential: str, now: float) -> tuple[Principal, float]:
        """The caller of ``credential`` and the monotonic time until which it is trusted."""
        if credential.startswith(KEY_PREFIX):
            record = self.keys.verify(credential)
            if record is None:
                raise AuthError(401, "invalid_key", "unknown or revoked API key")
            principal = Principal(f"key:{record.key_id}", frozenset({record.role}), None, "key")
            return principal, now + VERIFIED_SECONDS
        if not self.tokens.configured:
            raise AuthError(401, "invalid_key", "not an API key, and tokens are not accepted")
        principal, expires = self.tokens.verify_until(credential)
        return principal, now + min(VERIFIED_SECONDS, expires - time.time())

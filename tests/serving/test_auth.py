"""API keys, bearer tokens and roles: who gets in, and what each caller may do."""

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from serving import auth as auth_module
from serving.auth import (
    VERIFIED_SECONDS,
    Authenticator,
    AuthError,
    KeyStore,
    Role,
    TokenVerifier,
)
from serving.keys import main as keys_cli

SECRET = "s" * 32


def token(claims: dict, key: object = SECRET, algorithm: str = "HS256", **headers) -> str:
    claims = {"exp": int(time.time()) + 60, **claims}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers or None)


def authenticator(tmp_path, **verifier) -> Authenticator:  # noqa: ANN001
    tokens = TokenVerifier(**{"algorithms": ["HS256"], "secret": SECRET, **verifier})
    return Authenticator(KeyStore(tmp_path / "keys.json"), tokens)


def test_a_key_is_stored_as_a_digest_and_verifies_until_revoked(tmp_path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    record, key = store.create(Role.WRITER, "shop")
    secret = key.split("_", 2)[2]
    assert key.startswith("rk_") and secret not in (tmp_path / "keys.json").read_text()
    assert store.verify(key) == record
    assert store.verify(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    other = KeyStore(tmp_path / "keys.json")  # e.g. the running service: sees the revocation
    assert other.verify(key) is not None
    store.revoke(record.key_id)
    assert other.verify(key) is None


def test_keys_cli_creates_lists_and_revokes(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RECSYS_AUTH_KEYS_FILE", str(tmp_path / "keys.json"))
    from serving.config import get_auth_settings

    get_auth_settings.cache_clear()
    try:
        assert keys_cli(["create", "--role", "reader", "--name", "app", "--quiet"]) == 0
        key = capsys.readouterr().out.strip()
        key_id = key.split("_")[1]
        assert keys_cli(["list"]) == 0
        assert f"{key_id}\treader\tapp" in capsys.readouterr().out
        assert keys_cli(["revoke", key_id]) == 0
        assert KeyStore(tmp_path / "keys.json").verify(key) is None
        assert keys_cli(["revoke", "nope"]) == 1
    finally:
        get_auth_settings.cache_clear()


def test_a_verified_credential_is_trusted_for_a_second_then_checked_again(
        tmp_path, monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(auth_module.time, "monotonic", lambda: clock[0])
    auth = authenticator(tmp_path)
    record, key = auth.keys.create(Role.READER, "app")
    first = auth.authenticate(f"Bearer {key}", None)
    auth.keys.revoke(record.key_id)
    assert auth.authenticate(f"Bearer {key}", None) == first  # within the second: trusted
    clock[0] += VERIFIED_SECONDS
    with pytest.raises(AuthError) as refused:
        auth.authenticate(f"Bearer {key}", None)
    assert refused.value.error == "invalid_key"
    # a refusal is never remembered as verified
    expiring = token({"sub": "u1", "exp": int(time.time()) - 1})
    for _ in range(2):
        with pytest.raises(AuthError):
            auth.authenticate(f"Bearer {expiring}", None)


def test_missing_malformed_and_unknown_credentials_are_401(tmp_path) -> None:
    auth = authenticator(tmp_path)
    for authorization, api_key, error in ((None, None, "unauthenticated"),
                                          ("Basic abc", None, "unauthenticated"),
                                          ("Bearer rk_dead_beef", None, "invalid_key"),
                                          (None, "rk_dead_beef", "invalid_key"),
                                          ("Bearer not-a-jwt", None, "invalid_token")):
        with pytest.raises(AuthError) as refused:
            auth.authenticate(authorization, api_key)
        assert (refused.value.status, refused.value.error) == (401, error)


def test_a_service_key_acts_for_any_user_within_its_role(tmp_path) -> None:
    auth = authenticator(tmp_path)
    _, key = auth.keys.create(Role.READER, "app")
    caller = auth.authenticate(f"Bearer {key}", None)
    caller.check(Role.READER, ["u1", "u2"])
    with pytest.raises(AuthError) as refused:
        caller.check(Role.WRITER, ["u1"])
    assert refused.value.status == 403 and "writer" in refused.value.detail
    _, admin = auth.keys.create(Role.ADMIN, "ops")
    operator = auth.authenticate(None, admin)
    for role in Role:
        operator.check(role, ["anyone"])


def test_an_end_user_token_acts_only_for_its_subject(tmp_path) -> None:
    auth = authenticator(tmp_path, audience="recsys", issuer="https://id.example")
    good = token({"sub": "alice", "aud": "recsys", "iss": "https://id.example"})
    alice = auth.authenticate(f"Bearer {good}", None)
    alice.check(Role.READER, ["alice"])
    alice.check(Role.WRITER, ["alice"])
    with pytest.raises(AuthError) as refused:
        alice.check(Role.READER, ["bob"])
    assert refused.value.status == 403 and "bob" in refused.value.detail
    with pytest.raises(AuthError):
        alice.check(Role.ADMIN)


@pytest.mark.parametrize("claims", [
    {"sub": "alice", "aud": "other", "iss": "https://id.example"},
    {"sub": "alice", "aud": "recsys", "iss": "https://evil.example"},
    {"sub": "alice", "aud": "recsys", "iss": "https://id.example", "exp": 1},
    {"aud": "recsys", "iss": "https://id.example"},
])
def test_tokens_with_wrong_audience_issuer_expiry_or_subject_are_401(tmp_path, claims) -> None:
    auth = authenticator(tmp_path, audience="recsys", issuer="https://id.example")
    with pytest.raises(AuthError) as refused:
        auth.authenticate(f"Bearer {token(claims)}", None)
    assert refused.value.status == 401


def test_only_the_configured_algorithms_and_keys_are_accepted(tmp_path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "public.pem").write_bytes(pem)
    rs = authenticator(tmp_path, algorithms=["RS256"], secret=None,
                       public_key_file=tmp_path / "public.pem")
    signed = token({"sub": "carol"}, private, "RS256")
    assert rs.authenticate(f"Bearer {signed}", None).user_id == "carol"
    with pytest.raises(AuthError):  # HS256 is not among the configured algorithms
        rs.authenticate(f"Bearer {token({'sub': 'carol'})}", None)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1",
                                                              "alg": "RS256", "use": "sig"}]}))
    by_jwks = authenticator(tmp_path, algorithms=["RS256"], secret=None,
                            jwks_file=tmp_path / "jwks.json")
    assert by_jwks.authenticate(f"Bearer {token({'sub': 'dan'}, private, 'RS256', kid='k1')}",
                                None).user_id == "dan"
    with pytest.raises(AuthError):
        by_jwks.authenticate(f"Bearer {token({'sub': 'dan'}, private, 'RS256', kid='k2')}",
                             None)


def test_an_admin_token_is_an_operator_not_a_user(tmp_path) -> None:
    auth = authenticator(tmp_path)
    operator = auth.authenticate(f"Bearer {token({'sub': 'ops', 'roles': ['admin']})}", None)
    operator.check(Role.READER, ["anyone"])
    with pytest.raises(AuthError):
        auth.authenticate(f"Bearer {token({'sub': 'x', 'roles': ['root']})}", None)


def test_the_service_refuses_to_start_with_nothing_to_check(tmp_path) -> None:
    auth = Authenticator(KeyStore(tmp_path / "keys.json"), TokenVerifier(["HS256"]))
    with pytest.raises(RuntimeError, match="RECSYS_AUTH=off"):
        auth.require_credentials()
    auth.keys.create(Role.ADMIN, "ops")
    auth.require_credentials()
    off = Authenticator(KeyStore(tmp_path / "none.json"), TokenVerifier(["HS256"]), False)
    off.require_credentials()
    assert off.authenticate(None, None).may(Role.ADMIN)

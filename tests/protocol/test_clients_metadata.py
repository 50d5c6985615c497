"""Client metadata validation (RFC 7591 §2, OIDC Registration §2, JARM §3, RFC 9101 §10.5) — checklist S48.

``validate_client_metadata`` is pure: metadata in, normalised metadata or ``invalid_client_metadata`` /
``invalid_redirect_uri`` out. The HTTP side (and that nothing is stored) is in tests/server/test_registration.
"""

from __future__ import annotations

from typing import Any

import pytest

from jarmor.jose import generate_jwk
from jarmor.protocol import errors
from jarmor.protocol.clients import (
    Client,
    ServerCapabilities,
    check_redirect_uri_value,
    registered_redirect,
    uses_secret,
    validate_client_metadata,
)
from jarmor.protocol.policy import Policy

SERVER = ServerCapabilities(signing_algs=("ES256", "PS256", "RS256", "EdDSA"),
                            scopes=frozenset({"openid", "profile", "payments"}))
SIG = generate_jwk("ES256", kid="sig")
ENC = generate_jwk("ECDH-ES", kid="enc")
RURI = "https://c1.example/cb"


def md(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"redirect_uris": [RURI], "token_endpoint_auth_method": "private_key_jwt",
                            "jwks": {"keys": [SIG.public_dict(), ENC.public_dict()]}}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def validate(meta: dict[str, Any], policy: Policy | None = None) -> dict[str, Any]:
    return validate_client_metadata(meta, policy=policy or Policy(), server=SERVER)


def refused(meta: Any, error: str = "invalid_client_metadata", match: str | None = None) -> None:
    with pytest.raises(errors.OAuthError, match=match) as exc:
        validate(meta)
    assert exc.value.error == error and exc.value.status == 400


def test_defaults_and_normalisation() -> None:
    out = validate(md(scope="openid openid profile", client_name="Demo", unknown_member=1))
    assert out["risk_tier"] == "baseline"
    assert out["grant_types"] == ["authorization_code"] and out["response_types"] == ["code"]
    assert out["scope"] == "openid profile"
    assert out["authorization_signed_response_alg"] == "RS256"  # JARM §3 default
    assert out["require_signed_request_object"] is False
    assert "unknown_member" not in out and "response_modes" not in out
    high = validate(md(risk_tier="high", dpop_bound_access_tokens=True))
    assert high["authorization_signed_response_alg"] == "PS256" and high["dpop_bound_access_tokens"] is True
    assert validate(md(risk_tier="elevated"))["response_modes"] == ["jwt", "query.jwt", "fragment.jwt",
                                                                    "form_post.jwt"]
    assert validate(md(), Policy(default_client_tier="elevated"))["risk_tier"] == "elevated"


def test_encryption_defaults() -> None:
    """S45 / S48: ``_enc`` defaults to A128CBC-HS256 when ``_alg`` is set."""
    out = validate(md(request_object_encryption_alg="RSA-OAEP-256", authorization_encrypted_response_alg="ECDH-ES"))
    assert out["request_object_encryption_enc"] == "A128CBC-HS256"
    assert out["authorization_encrypted_response_enc"] == "A128CBC-HS256"
    client = Client.from_metadata("c", out)
    assert client.request_object_encryption == ("RSA-OAEP-256", "A128CBC-HS256")
    assert client.authorization_encryption == ("ECDH-ES", "A128CBC-HS256")


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("not an object", {"__list__": True}, "invalid_client_metadata"),
    ("tier unknown", {"risk_tier": "gold"}, "invalid_client_metadata"),
    ("tier not a string", {"risk_tier": 3}, "invalid_client_metadata"),
    ("grant unknown", {"grant_types": ["password"]}, "invalid_client_metadata"),
    ("grant duplicates", {"grant_types": ["authorization_code", "authorization_code"]}, "invalid_client_metadata"),
    ("grant not a list", {"grant_types": "authorization_code"}, "invalid_client_metadata"),
    ("response type", {"response_types": ["token"]}, "invalid_client_metadata"),
    ("auth method unknown", {"token_endpoint_auth_method": "self_signed_tls_client_auth"},
     "invalid_client_metadata"),
    ("public client credentials", {"token_endpoint_auth_method": "none", "jwks": None,
                                   "grant_types": ["client_credentials"], "redirect_uris": None},
     "invalid_client_metadata"),
    ("jwks and jwks_uri", {"jwks_uri": "https://c1.example/jwks"}, "invalid_client_metadata"),
    ("jwks empty", {"jwks": {"keys": []}}, "invalid_client_metadata"),
    ("jwks private", {"jwks": {"keys": [SIG.private_dict()]}}, "invalid_client_metadata"),
    ("jwks missing for private_key_jwt", {"jwks": None}, "invalid_client_metadata"),
    ("alg none", {"request_object_signing_alg": "none"}, "invalid_client_metadata"),
    ("alg HS256", {"request_object_signing_alg": "HS256"}, "invalid_client_metadata"),
    ("alg not a string", {"request_object_signing_alg": 256}, "invalid_client_metadata"),
    ("alg RS256 in high", {"risk_tier": "high", "id_token_signed_response_alg": "RS256"},
     "invalid_client_metadata"),
    ("enc without alg", {"request_object_encryption_enc": "A128GCM"}, "invalid_client_metadata"),
    ("jarm enc without alg", {"authorization_encrypted_response_enc": "A128GCM"}, "invalid_client_metadata"),
    ("RSA1_5", {"request_object_encryption_alg": "RSA1_5"}, "invalid_client_metadata"),
    ("enc unsupported", {"request_object_encryption_alg": "ECDH-ES", "request_object_encryption_enc": "A192GCM"},
     "invalid_client_metadata"),
    ("jarm encryption without an enc key", {"jwks": {"keys": [SIG.public_dict()]},
                                            "authorization_encrypted_response_alg": "ECDH-ES"},
     "invalid_client_metadata"),
    ("jarm encryption key of another type", {"authorization_encrypted_response_alg": "RSA-OAEP-256"},
     "invalid_client_metadata"),
    ("flag not boolean", {"require_pushed_authorization_requests": "true"}, "invalid_client_metadata"),
    ("response mode unknown", {"response_modes": ["query", "web_message"]}, "invalid_client_metadata"),
    ("scope unknown", {"scope": "openid admin"}, "invalid_client_metadata"),
    ("client_name too long", {"client_name": "x" * 1001}, "invalid_client_metadata"),
    ("contacts not strings", {"contacts": [1]}, "invalid_client_metadata"),
    ("too many redirect uris", {"redirect_uris": [f"{RURI}{i}" for i in range(21)]}, "invalid_client_metadata"),
    ("redirect uri missing", {"redirect_uris": None}, "invalid_redirect_uri"),
    ("redirect uri http", {"redirect_uris": ["http://c1.example/cb"]}, "invalid_redirect_uri"),
    ("redirect uri fragment", {"redirect_uris": [RURI + "#x"]}, "invalid_redirect_uri"),
    ("redirect uri javascript", {"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
    ("elevated secret", {"risk_tier": "elevated", "token_endpoint_auth_method": "client_secret_post"},
     "invalid_client_metadata"),
    ("elevated plain modes", {"risk_tier": "elevated", "response_modes": ["jwt", "fragment"]},
     "invalid_client_metadata"),
    ("high without PAR", {"risk_tier": "high", "require_pushed_authorization_requests": False},
     "invalid_client_metadata"),
    ("critical without encryption", {"risk_tier": "critical"}, "invalid_client_metadata"),
    ("critical without JARM encryption", {"risk_tier": "critical", "request_object_encryption_alg": "ECDH-ES"},
     "invalid_client_metadata"),
]


@pytest.mark.parametrize(("case", "change", "error"), BAD, ids=[c[0] for c in BAD])
def test_refused_metadata(case: str, change: dict[str, Any], error: str) -> None:
    refused(["not", "a", "mapping"] if change.get("__list__") else md(**change), error)


def test_critical_with_both_encryptions() -> None:
    out = validate(md(risk_tier="critical", request_object_encryption_alg="ECDH-ES",
                      authorization_encrypted_response_alg="ECDH-ES", dpop_bound_access_tokens=True))
    assert out["require_pushed_authorization_requests"] is True


@pytest.mark.parametrize(("uri", "https_only", "ok"), [
    ("https://c.example/cb", True, True),
    ("https://c.example/cb?x=1", True, True),
    ("http://127.0.0.1:5000/cb", True, True),
    ("http://[::1]/cb", True, True),
    ("http://localhost/cb", True, True),
    ("http://127.0.0.1.evil.example/cb", False, False),
    ("http://c.example/cb", False, False),
    ("com.example.app:/cb", False, True),
    ("com.example.app:/cb", True, False),
    ("https:///cb", False, False),
    ("https://c.example/cb#f", False, False),
    ("data:text/html,x", False, False),
    ("file:///etc/passwd", False, False),
    ("//c.example/cb", False, False),
    ("https://[::1", False, False),
])
def test_redirect_uri_values(uri: str, https_only: bool, ok: bool) -> None:
    if ok:
        check_redirect_uri_value(uri, https_only=https_only)
    else:
        with pytest.raises(errors.OAuthError) as exc:
            check_redirect_uri_value(uri, https_only=https_only)
        assert exc.value.error == "invalid_redirect_uri"


def test_registered_redirect_is_an_exact_match() -> None:
    one = Client.from_metadata("c", {"risk_tier": "baseline", "token_endpoint_auth_method": "none",
                                     "redirect_uris": [RURI]})
    two = Client.from_metadata("c", {"risk_tier": "baseline", "token_endpoint_auth_method": "none",
                                     "redirect_uris": [RURI, RURI + "2"]})
    assert registered_redirect(one, RURI) == RURI
    assert registered_redirect(one, None) == RURI  # RFC 6749 §3.1.2.3: the only registered URI
    assert registered_redirect(two, None) is None
    for uri in (RURI + "/", RURI.upper(), RURI + "?", "https://c1.example:443/cb", RURI + "#"):
        assert registered_redirect(one, uri) is None


def test_client_model_defaults() -> None:
    c = Client.from_metadata("c", {"risk_tier": "baseline", "token_endpoint_auth_method": "client_secret_basic"})
    assert c.authorization_signed_response_alg == "RS256" and c.request_object_signing_alg is None
    assert c.grant_types == {"authorization_code"} and c.scopes is None and c.client_kind == "third-party"
    assert uses_secret({"token_endpoint_auth_method": "client_secret_post"})
    assert not uses_secret({"token_endpoint_auth_method": "private_key_jwt"})


def test_generated_client_ids_never_look_like_options() -> None:
    """A generated ``client_id`` is passed to ``jarmor clients show ID``: it must not start with ``-``."""
    from jarmor.protocol.registration import new_client_id

    ids = {new_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)  # 128 bits, base64url

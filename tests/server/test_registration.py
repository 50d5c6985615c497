"""Dynamic client registration (RFC 7591) through /register: access control, metadata validation, tiers.

Checklist S48 (client metadata validated at registration), S57 (client key sizes) and the tier matrix at
registration: a refusal is ``invalid_client_metadata`` (or ``invalid_redirect_uri``) naming the control, and
nothing is stored.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jarmor.jose import generate_jwk
from jarmor.jose.b64 import b64url_encode
from tests.kit import REDIRECT, Kit

from .conftest import KitFactory
from .support import assert_json_error

TOKEN = {"Authorization": "Bearer initial-token"}


def es256_jwks() -> dict[str, Any]:
    return {"keys": [generate_jwk("ES256").public_dict()]}


def meta(**overrides: Any) -> dict[str, Any]:
    """Metadata valid in every tier below critical: private_key_jwt, JARM modes, ES256, DPoP-bound tokens."""
    base: dict[str, Any] = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": es256_jwks(),
        "response_modes": ["jwt", "query.jwt"],
        "dpop_bound_access_tokens": True,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


async def post(kit: Kit, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return await kit.http.post("/register", json=body, headers=TOKEN if headers is None else headers)


async def assert_refused(
    kit: Kit, body: Any, error: str = "invalid_client_metadata", mentions: str | None = None
) -> None:
    before = await kit.store.clients.count()
    r = await post(kit, body)
    got = assert_json_error(r, error)
    if mentions is not None:
        assert mentions in got["error_description"], got
    assert await kit.store.clients.count() == before, "nothing is stored on refusal"


# --- the endpoint --------------------------------------------------------------------------------------


async def test_registration_success(kit: Kit) -> None:
    r = await post(kit, meta(risk_tier="high"))
    assert r.status_code == 201, r.text
    assert "no-store" in r.headers["cache-control"]
    body = r.json()
    assert body["risk_tier"] == "high"
    assert body["require_pushed_authorization_requests"] is True
    assert body["require_signed_request_object"] is True
    assert body["registration_access_token"] and body["client_id"]
    assert "client_secret" not in body
    assert await kit.store.clients.get(body["client_id"]) is not None


@pytest.mark.parametrize("tier", ["high", "critical"])
async def test_unbound_client_is_refused_where_the_tier_requires_sender_constrained_tokens(
    kit: Kit, tier: str
) -> None:
    """Issue 13: a high or critical client must declare a binding (RFC 9449 §5.2 or RFC 8705 §3.4)."""
    extra: dict[str, Any] = {}
    if tier == "critical":
        extra = {
            "request_object_encryption_alg": "ECDH-ES",
            "authorization_encrypted_response_alg": "ECDH-ES",
            "jwks": {"keys": [*es256_jwks()["keys"], generate_jwk("ECDH-ES").public_dict()]},
        }
    base = meta(risk_tier=tier, **extra)
    for unbound in ({"dpop_bound_access_tokens": None}, {"dpop_bound_access_tokens": False}):
        await assert_refused(kit, {**meta(**{**base, **unbound})}, mentions="control sender_constrained_tokens")
    r = await post(kit, base)
    assert r.status_code == 201 and r.json()["dpop_bound_access_tokens"] is True, r.text


async def test_secret_is_issued_for_secret_methods(kit: Kit) -> None:
    r = await post(
        kit,
        meta(
            risk_tier="baseline",
            token_endpoint_auth_method="client_secret_basic",
            jwks=None,
            response_modes=None,
        ),
    )
    assert r.status_code == 201, r.text
    assert len(r.json()["client_secret"]) >= 43


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}])
async def test_initial_access_token_required(kit: Kit, headers: dict[str, str]) -> None:
    r = await post(kit, meta(), headers=headers)
    assert_json_error(r, "invalid_token", 401)
    assert "www-authenticate" in r.headers
    assert await kit.store.clients.count() == 0


async def test_registration_disabled(make: KitFactory) -> None:
    kit = await make(registration_token=None)
    assert_json_error(await post(kit, meta()), "access_denied", 403)


async def test_body_must_be_a_json_object(kit: Kit) -> None:
    r = await kit.http.post("/register", data={"redirect_uris": REDIRECT}, headers=TOKEN)
    assert_json_error(r, "invalid_client_metadata")
    r = await kit.http.post(
        "/register", content=b"[1,2]", headers={**TOKEN, "content-type": "application/json"}
    )
    assert_json_error(r, "invalid_client_metadata")
    r = await kit.http.post(
        "/register", content=b'{"a":1,"a":2}', headers={**TOKEN, "content-type": "application/json"}
    )
    assert_json_error(r, "invalid_client_metadata")
    assert (await kit.http.get("/register")).status_code == 405


# --- tier enforcement at registration (naming the control) ---------------------------------------------


@pytest.mark.parametrize(
    ("tier", "changes", "control"),
    [
        ("elevated", {"token_endpoint_auth_method": "client_secret_basic"}, "private_key_jwt"),
        ("elevated", {"token_endpoint_auth_method": "client_secret_post"}, "private_key_jwt"),
        ("elevated", {"token_endpoint_auth_method": "none"}, "private_key_jwt"),
        ("high", {"token_endpoint_auth_method": "client_secret_basic"}, "private_key_jwt"),
        ("elevated", {"require_signed_request_object": False}, "signed_request_object"),
        ("high", {"require_pushed_authorization_requests": False}, "control par"),
        ("elevated", {"response_modes": ["query"]}, "control jarm"),
        ("elevated", {"response_modes": ["jwt", "form_post"]}, "control jarm"),
        ("high", {"response_modes": ["fragment"]}, "control jarm"),
        ("critical", {}, "encrypted_request_object"),
    ],
)
async def test_tier_controls_at_registration(
    kit: Kit, tier: str, changes: dict[str, Any], control: str
) -> None:
    await assert_refused(kit, meta(risk_tier=tier, **changes), mentions=control)


@pytest.mark.parametrize(
    "member",
    [
        "request_object_signing_alg",
        "authorization_signed_response_alg",
        "token_endpoint_auth_signing_alg",
        "id_token_signed_response_alg",
    ],
)
async def test_rs256_refused_in_high(kit: Kit, member: str) -> None:
    """FAPI: RS256 is not allowed in the high tier for any signature the client registers."""
    await assert_refused(kit, meta(risk_tier="high", **{member: "RS256"}), mentions="RS256")
    r = await post(kit, meta(risk_tier="baseline", **{member: "RS256"}))
    assert r.status_code == 201, r.text


async def test_unknown_tier(kit: Kit) -> None:
    """The description names the configured tiers, never the value sent (RFC 6749 §5.2 error text)."""
    await assert_refused(kit, meta(risk_tier="platinum"), mentions="unknown risk_tier; known: baseline")


async def test_keys_required_for_private_key_jwt_and_signed_objects(kit: Kit) -> None:
    await assert_refused(kit, meta(jwks=None), mentions="jwks")
    await assert_refused(kit, meta(risk_tier="elevated", jwks=None), mentions="jwks")


# --- S48: client metadata rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"request_object_signing_alg": "none"},
        {"request_object_signing_alg": "NONE"},
        {"authorization_signed_response_alg": "none"},
        {"request_object_signing_alg": "HS256"},
        {"token_endpoint_auth_signing_alg": "HS256"},
        {"authorization_signed_response_alg": "ES384"},
        {"request_object_encryption_enc": "A128GCM"},
        {"authorization_encrypted_response_enc": "A128GCM"},
        {"request_object_encryption_alg": "RSA1_5"},
        {"authorization_encrypted_response_alg": "RSA1_5"},
        {"authorization_encrypted_response_alg": "ECDH-ES"},  # no use=enc key in jwks
        {"request_object_encryption_alg": "dir"},
        {"jwks_uri": "https://client.example/jwks"},  # together with jwks (RFC 7591 §2)
        {"grant_types": ["password"]},
        {"grant_types": ["implicit"]},
        {"response_types": ["code id_token"]},
        {"response_modes": ["web_message"]},
        {"scope": "openid admin"},
        {"require_signed_request_object": "yes"},
        {"client_kind": "robot"},
        {"token_endpoint_auth_method": "tls_client_auth"},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
async def test_invalid_metadata(kit: Kit, changes: dict[str, Any]) -> None:
    await assert_refused(kit, meta(**changes))


async def test_public_client_cannot_use_client_credentials(kit: Kit) -> None:
    await assert_refused(
        kit,
        meta(
            risk_tier="baseline",
            token_endpoint_auth_method="none",
            jwks=None,
            grant_types=["authorization_code", "client_credentials"],
        ),
    )


def rsa_public_jwk(bits: int) -> dict[str, Any]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key().public_numbers()
    return {
        "kty": "RSA",
        "n": b64url_encode(numbers.n.to_bytes((bits + 7) // 8, "big")),
        "e": b64url_encode(numbers.e.to_bytes(3, "big")),
        "kid": f"rsa{bits}",
    }


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": [rsa_public_jwk(1024)]},
        {"keys": [generate_jwk("ES256").private_dict()]},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        {"keys": [{"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}]},
        {"keys": []},
        {"keys": "not-a-list"},
    ],
    ids=["rsa-1024", "private key", "symmetric", "unknown curve", "empty", "malformed"],
)
async def test_weak_private_or_symmetric_client_keys(kit: Kit, jwks: dict[str, Any]) -> None:
    """S57 / A62 / A63: RSA >= 2048 bits, no private or symmetric material."""
    await assert_refused(kit, meta(jwks=jwks))


@pytest.mark.parametrize(
    "uri",
    [
        "http://client.example/cb",
        "https://client.example/cb#frag",
        "javascript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "/relative/cb",
        "https://",
    ],
)
async def test_invalid_redirect_uris(kit: Kit, uri: str) -> None:
    await assert_refused(kit, meta(redirect_uris=[uri]), error="invalid_redirect_uri")


async def test_redirect_uris_required_for_the_code_grant(kit: Kit) -> None:
    await assert_refused(kit, meta(redirect_uris=None), error="invalid_redirect_uri")
    await assert_refused(kit, meta(redirect_uris=[]), error="invalid_redirect_uri")


@pytest.mark.parametrize(
    "uri",
    ["https://client.example/cb", "http://127.0.0.1:8080/cb", "http://[::1]/cb", "http://localhost:1234/cb"],
)
async def test_valid_redirect_uris(kit: Kit, uri: str) -> None:
    """https, or http on a loopback host for native clients (RFC 8252 §7.3), in every tier."""
    r = await post(kit, meta(risk_tier="high", redirect_uris=[uri]))
    assert r.status_code == 201, r.text


async def test_private_use_scheme_redirect_uri(kit: Kit) -> None:
    """RFC 8252 §7.1 native apps may use private-use schemes below the high tier; FAPI 2.0 tiers need https."""
    r = await post(kit, meta(risk_tier="baseline", redirect_uris=["com.example.app:/cb"]))
    assert r.status_code == 201, r.text
    r = await post(kit, meta(risk_tier="high", redirect_uris=["com.example.app:/cb"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_redirect_uri"
    r = await post(kit, meta(risk_tier="high", redirect_uris=["http://127.0.0.1:9999/cb"]))
    assert r.status_code == 201, r.text  # loopback http stays allowed (RFC 8252 §7.3)


async def test_defaults_per_tier(kit: Kit) -> None:
    """S44: JARM §3 defaults to RS256; tiers that forbid RS256 default to PS256 (documented deviation)."""
    body = (await post(kit, meta(risk_tier="baseline", response_modes=None))).json()
    assert body["authorization_signed_response_alg"] == "RS256"
    assert body["require_signed_request_object"] is False
    body = (await post(kit, meta(risk_tier="high", response_modes=None))).json()
    assert body["authorization_signed_response_alg"] == "PS256"
    assert set(body["response_modes"]) == {"jwt", "query.jwt", "fragment.jwt", "form_post.jwt"}
    assert body["token_endpoint_auth_method"] == "private_key_jwt"


async def test_machine_client(kit: Kit) -> None:
    r = await post(
        kit,
        {
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": es256_jwks(),
            "scope": "profile",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["client_kind"] == "machine" and r.json()["redirect_uris"] == []


async def test_client_supplied_unknown_members_are_dropped(kit: Kit) -> None:
    """A67: privileged or unknown fields are not stored."""
    r = await post(kit, meta(client_id="chosen", client_secret="mine", disabled=False, is_admin=True))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["client_id"] != "chosen" and "is_admin" not in body and "client_secret" not in body


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("logo_uri", "javascript:alert(1)"),
        ("logo_uri", "data:image/svg+xml,<svg onload=alert(1)>"),
        ("client_uri", "http://example.com/"),
        ("policy_uri", "https://"),
        ("tos_uri", 'https://example.com/"><script>'),
        ("contacts", ["javascript:alert(1)"]),
        ("contacts", ["ops@example.com", "<b>@example.com"]),
        ("contacts", ["mailto:ops@example.com"]),
    ],
)
async def test_displayed_metadata_must_be_https_urls_and_email_addresses(kit: Kit, member: str, value: Any) -> None:
    """RFC 7591 §2: URLs and contacts end up on the consent page and the admin dashboard: https and e-mail only."""
    await assert_refused(kit, meta(**{member: value}), mentions=member)
    assert await kit.store.clients.count() == 0


async def test_displayed_metadata_accepted(kit: Kit) -> None:
    r = await post(kit, meta(logo_uri="https://example.com/logo.png", contacts=["ops@example.com"]))
    assert r.status_code == 201, r.text
    assert r.json()["contacts"] == ["ops@example.com"]

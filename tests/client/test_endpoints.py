"""Discovery (C13), the JWKS fetch, PAR responses (C19) and token responses (C24)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jarmor.client import (
    AsyncOAuthClient,
    DiscoveryError,
    ParError,
    TokenError,
    TransportError,
)
from jarmor.client.metadata import discovery_urls

from .fake_server import ISSUER, callback

# -- discovery ------------------------------------------------------------------------------------------


def test_discovery_urls() -> None:
    assert discovery_urls("https://as.example") == (
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    )
    assert discovery_urls("https://as.example/tenant/1") == (
        "https://as.example/.well-known/oauth-authorization-server/tenant/1",
        "https://as.example/tenant/1/.well-known/openid-configuration",
    )


async def test_discovery(client: AsyncOAuthClient, fake: Any) -> None:
    metadata = await client.discover()
    assert metadata.issuer == ISSUER
    assert metadata.token_endpoint == f"{ISSUER}/token"
    assert metadata.authorization_response_iss_parameter_supported is True
    assert client.metadata is metadata


@pytest.mark.parametrize("issuer", ["https://evil.example", ISSUER + "/", "https://AS.example", None])
async def test_discovery_issuer_mismatch(client: AsyncOAuthClient, fake: Any, issuer: Any) -> None:
    fake.metadata["issuer"] = issuer
    with pytest.raises(DiscoveryError) as info:
        await client.start_authorization(scope="a")
    assert info.value.reason == "issuer_mismatch"
    assert fake.calls("/par") == 0 and fake.calls("/jwks") == 0


async def test_discovery_falls_back_to_openid_configuration(client: AsyncOAuthClient, fake: Any) -> None:
    original = fake.handle

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            fake.requests.append(request)
            return httpx.Response(200, json=fake.metadata)
        return original(request)

    fake.metadata_status = 404
    fake.handle = handle
    assert (await client.discover()).issuer == ISSUER
    paths = [r.url.path for r in fake.requests]
    assert paths == ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]


async def test_discovery_not_served(client: AsyncOAuthClient, fake: Any) -> None:
    fake.metadata_status = 500
    with pytest.raises(DiscoveryError) as info:
        await client.discover()
    assert info.value.reason == "http_status"


@pytest.mark.parametrize(
    ("member", "value", "reason"),
    [
        ("jwks_uri", "http://as.example/jwks", "invalid_endpoint"),
        ("jwks_uri", "https://10.0.0.1/jwks", "insecure_endpoint"),
        ("jwks_uri", "https://169.254.169.254/latest", "insecure_endpoint"),
        ("token_endpoint", "file:///etc/passwd", "invalid_endpoint"),
        ("token_endpoint", None, "invalid_endpoint"),
        ("authorization_endpoint", "https://as.example/authorize#frag", "invalid_endpoint"),
        ("pushed_authorization_request_endpoint", "http://127.0.0.1/par", "invalid_endpoint"),
        ("code_challenge_methods_supported", "S256", "invalid_metadata"),
        ("authorization_response_iss_parameter_supported", "true", "invalid_metadata"),
    ],
)
async def test_bad_metadata(
    client: AsyncOAuthClient, fake: Any, member: str, value: Any, reason: str
) -> None:
    fake.metadata[member] = value
    with pytest.raises(DiscoveryError) as info:
        await client.discover()
    assert info.value.reason == reason


async def test_token_endpoint_on_another_host_is_accepted(client: AsyncOAuthClient, fake: Any) -> None:
    """A70 decision: endpoints may live elsewhere (the assertion audience is still the issuer, A84)."""
    fake.metadata["token_endpoint"] = "https://tokens.as.example/token"
    assert (await client.discover()).token_endpoint == "https://tokens.as.example/token"


async def test_metadata_not_json(client: AsyncOAuthClient, fake: Any) -> None:
    fake.handle = lambda request: httpx.Response(200, content=b'{"issuer": "a", "issuer": "b"}')
    with pytest.raises(DiscoveryError) as info:
        await client.discover()
    assert info.value.reason == "not_json"


async def test_oversized_metadata(client: AsyncOAuthClient, fake: Any) -> None:
    fake.handle = lambda request: httpx.Response(200, content=b"{" + b" " * (1 << 20) + b"}")
    with pytest.raises(TransportError) as info:
        await client.discover()
    assert info.value.reason == "response_too_large"


async def test_redirects_are_not_followed(client: AsyncOAuthClient, fake: Any) -> None:
    fake.handle = lambda request: httpx.Response(302, headers={"location": "https://evil.example/meta"})
    with pytest.raises(DiscoveryError):
        await client.discover()


async def test_transport_error(client: AsyncOAuthClient, fake: Any) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fake.handle = fail
    with pytest.raises(TransportError) as info:
        await client.discover()
    assert info.value.hop == "discovery"


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": {}},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]},
    ],
)
async def test_bad_jwks(client: AsyncOAuthClient, fake: Any, begin: Any, jwks: dict[str, Any]) -> None:
    ro = await begin(client)
    original = fake.handle
    fake.handle = lambda r: httpx.Response(200, json=jwks) if r.url.path == "/jwks" else original(r)
    with pytest.raises(DiscoveryError) as info:
        await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert info.value.reason == "invalid_jwks"
    assert fake.calls("/token") == 0


async def test_jwks_with_private_key_refused(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    original = fake.handle
    leaked = {"keys": [fake.sig_key.private_dict()]}
    fake.handle = lambda r: httpx.Response(200, json=leaked) if r.url.path == "/jwks" else original(r)
    with pytest.raises(DiscoveryError):
        await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])


async def test_expired_jwks_cache_survives_failed_refresh(
    client: AsyncOAuthClient, fake: Any, begin: Any, clock: Any
) -> None:
    ro = await begin(client)
    await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    clock.t += 3601
    fake.jwks_status = 500
    ro = await begin(client)
    assert (await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])).code == ro["_code"]
    assert fake.calls("/jwks") == 2


# -- PAR (C19) --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "reason", "error"),
    [
        (200, {"request_uri": "urn:x:1", "expires_in": 60}, {}, "unexpected_status", None),
        (
            400,
            {"error": "invalid_request_object", "error_description": "bad"},
            {},
            "par_rejected",
            "invalid_request_object",
        ),
        (401, {"error": "invalid_client"}, {}, "par_rejected", "invalid_client"),
        (405, None, {}, "method_not_allowed", None),
        (413, None, {}, "request_too_large", None),
        (429, None, {"retry-after": "30"}, "rate_limited", None),
        (500, None, {}, "unexpected_status", None),
        (201, {"request_uri": "", "expires_in": 60}, {}, "invalid_response", None),
        (201, {"request_uri": 5, "expires_in": 60}, {}, "invalid_response", None),
        (201, {"request_uri": "not a uri", "expires_in": 60}, {}, "invalid_response", None),
        (201, {"request_uri": "urn:x:1"}, {}, "invalid_response", None),
        (201, {"request_uri": "urn:x:1", "expires_in": 0}, {}, "invalid_response", None),
        (201, {"request_uri": "urn:x:1", "expires_in": "60"}, {}, "invalid_response", None),
        (201, {"request_uri": "urn:x:1", "expires_in": True}, {}, "invalid_response", None),
        (201, {"request_uri": "urn:x:1", "expires_in": 1.5}, {}, "invalid_response", None),
    ],
)
async def test_par_errors(
    client: AsyncOAuthClient,
    fake: Any,
    status: int,
    body: Any,
    headers: dict[str, str],
    reason: str,
    error: str | None,
) -> None:
    fake.par_override = lambda: httpx.Response(status, json=body, headers=headers)
    with pytest.raises(ParError) as info:
        await client.start_authorization(scope="a")
    assert info.value.reason == reason
    assert info.value.error == error
    if status == 429:
        assert info.value.retry_after == "30"
    assert fake.calls("/par") == 1  # never retried
    assert len(client.core.store) == 0  # type: ignore[arg-type]  # no flow left behind


# -- token endpoint (C24) ------------------------------------------------------------------------------


async def _code(client: AsyncOAuthClient, fake: Any, begin: Any) -> Any:
    ro = await begin(client)
    return await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])


@pytest.mark.parametrize(
    ("status", "body", "reason", "error"),
    [
        (400, {"error": "invalid_grant", "error_description": "used"}, "token_rejected", "invalid_grant"),
        (401, {"error": "invalid_client"}, "token_rejected", "invalid_client"),
        (500, "oops", "unexpected_status", None),
        (200, "not json", "invalid_response", None),
        (200, {"token_type": "Bearer"}, "invalid_response", None),
        (200, {"access_token": "a", "token_type": "mac"}, "unsupported_token_type", None),
        (200, {"access_token": "a"}, "unsupported_token_type", None),
        (200, {"access_token": "a", "token_type": "Bearer", "expires_in": "300"}, "invalid_response", None),
        (200, {"access_token": "a", "token_type": "Bearer", "scope": ["a"]}, "invalid_response", None),
    ],
)
async def test_token_errors(
    client: AsyncOAuthClient, fake: Any, begin: Any, status: int, body: Any, reason: str, error: str | None
) -> None:
    result = await _code(client, fake, begin)
    if isinstance(body, str):
        fake.token_override = lambda form: httpx.Response(status, content=body.encode())
    else:
        fake.token_override = lambda form: httpx.Response(status, json=body)
    with pytest.raises(TokenError) as info:
        await client.exchange_code(result)
    assert info.value.reason == reason and info.value.error == error and info.value.status == status


async def test_token_response_tolerance(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    """C24: token_type case-insensitive; expires_in and scope optional."""
    result = await _code(client, fake, begin)
    fake.token_extra = {"token_type": "bEaReR"}
    fake.token_drop = ("expires_in", "scope")
    tokens = await client.exchange_code(result)
    assert tokens.token_type == "Bearer"
    assert tokens.expires_in is None and tokens.expires_at is None
    assert tokens.scope == "accounts"  # the requested scope
    assert tokens.access_token not in repr(tokens)

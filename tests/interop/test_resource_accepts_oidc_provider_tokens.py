"""jarmor.resource accepts the access tokens oidc-provider 9 issues — opaque ones through oidc-provider's
introspection endpoint (RFC 7662) and RFC 9068 JWT access tokens (``features.resourceIndicators`` with
``accessTokenFormat: 'jwt'``) against its JWKS — and, for tokens bound with ``features.dPoP``, refuses them
replayed without the key: as a bearer token, with another key's proof, or with no proof.

The client is the test itself (``client_credentials`` with ``client_secret_basic``); its DPoP proofs are
built with ``jarmor.jose``, so the protected resource sees exactly what a DPoP client sends.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jarmor.jose import Jwk, generate_jwk, sign_jws_embedded_jwk
from jarmor.protocol.dpop import access_token_hash
from jarmor.resource import (
    IntrospectionVerifier,
    JwtAccessTokenVerifier,
    Principal,
    ResourceError,
    ResourceServer,
)
from tests.e2e.conftest import free_port

from .peers import NodeProcess, start_node

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("node")]

RESOURCE = "https://api.example"
API_URL = f"{RESOURCE}/orders"  # the URL the resource serves (what proofs name in htu)
FORMATS = ("opaque", "jwt")


@dataclass(frozen=True)
class ResourceProvider:
    issuer: str
    secrets: dict[str, str]
    process: NodeProcess


@pytest.fixture(scope="module")
def provider(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResourceProvider]:
    workdir = tmp_path_factory.mktemp("interop-oidc-provider-resource")
    creds = {"orders-app": secrets.token_urlsafe(24), "orders-api": secrets.token_urlsafe(24)}
    clients = [
        {"client_id": name, "client_secret": secret, "token_endpoint_auth_method": "client_secret_basic",
         "grant_types": ["client_credentials"], "response_types": [], "redirect_uris": [],
         "id_token_signed_response_alg": "ES256"}
        for name, secret in creds.items()
    ]
    (workdir / "clients.json").write_text(json.dumps(clients))
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    op = start_node(
        node,
        "op-oidc-provider-resource.mjs",
        env={"PORT": str(port), "CLIENTS_FILE": str(workdir / "clients.json"), "RESOURCE": RESOURCE},
        log=workdir / "oidc-provider.log",
        ready_url=f"{issuer}/.well-known/openid-configuration",
    )
    try:
        yield ResourceProvider(issuer, creds, op)
    finally:
        op.stop()


@pytest.fixture(autouse=True)
def provider_log(provider: ResourceProvider) -> Iterator[None]:
    start = provider.process.log.stat().st_size
    yield
    logged = provider.process.log.read_bytes()[start:]
    if logged:
        print("oidc-provider log:\n" + logged.decode(errors="replace"))


@pytest.fixture
async def resource_servers(provider: ResourceProvider) -> AsyncIterator[dict[str, ResourceServer]]:
    """One jarmor.resource per token format, as two APIs would configure it."""
    async with httpx.AsyncClient() as http:
        meta = (await http.get(f"{provider.issuer}/.well-known/openid-configuration")).json()
    introspection = IntrospectionVerifier(
        endpoint=meta["introspection_endpoint"], client_id="orders-api",
        client_secret=provider.secrets["orders-api"], issuer=provider.issuer, audience=f"{RESOURCE}/opaque",
    )
    jwt = JwtAccessTokenVerifier(issuer=provider.issuer, audience=f"{RESOURCE}/jwt")
    yield {"opaque": ResourceServer(verifier=introspection), "jwt": ResourceServer(jwt_verifier=jwt)}
    await introspection.aclose()
    await jwt.aclose()


def dpop_proof(key: Jwk, method: str, url: str, token: str | None = None, alg: str = "ES256") -> str:
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time())}
    if token is not None:
        claims["ath"] = access_token_hash(token)
    return sign_jws_embedded_jwk(claims, key, alg, typ="dpop+jwt")


async def issue(provider: ResourceProvider, fmt: str, key: Jwk | None = None) -> dict[str, Any]:
    token_url = f"{provider.issuer}/token"
    headers = {"DPoP": dpop_proof(key, "POST", token_url)} if key is not None else {}
    async with httpx.AsyncClient() as http:
        r = await http.post(
            token_url, headers=headers, auth=("orders-app", provider.secrets["orders-app"]),
            data={"grant_type": "client_credentials", "scope": "orders:read", "resource": f"{RESOURCE}/{fmt}"},
        )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["token_type"] == ("DPoP" if key is not None else "Bearer")
    return body


async def call(rs: ResourceServer, authorization: str, dpop: str | None = None) -> Principal:
    return await rs.authenticate(method="GET", url=API_URL, authorization=authorization, dpop=dpop)


async def refused(rs: ResourceServer, authorization: str, dpop: str | None = None) -> ResourceError:
    with pytest.raises(ResourceError) as info:
        await call(rs, authorization, dpop)
    return info.value


@pytest.mark.parametrize("fmt", FORMATS)
async def test_bearer_tokens_are_accepted(provider: ResourceProvider, resource_servers: dict[str, ResourceServer],
                                          fmt: str) -> None:
    token = (await issue(provider, fmt))["access_token"]
    assert (token.count(".") == 2) is (fmt == "jwt")
    principal = await call(resource_servers[fmt], f"Bearer {token}")
    assert principal.client_id == "orders-app" and principal.scopes == {"orders:read"}
    assert principal.binding is None
    other = "jwt" if fmt == "opaque" else "opaque"  # a token for the other resource is not for this one
    err = await refused(resource_servers[other], f"Bearer {token}")
    assert err.error == "invalid_token"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_dpop_bound_tokens_need_a_proof_from_their_key(
    provider: ResourceProvider, resource_servers: dict[str, ResourceServer], fmt: str
) -> None:
    rs = resource_servers[fmt]
    key = generate_jwk("ES256")
    token = (await issue(provider, fmt, key))["access_token"]
    principal = await call(rs, f"DPoP {token}", dpop_proof(key, "GET", API_URL, token))
    assert principal.binding is not None and principal.binding.thumbprint == key.thumbprint()

    err = await refused(rs, f"Bearer {token}")  # replayed as a bearer token (RFC 9449 §7.2)
    assert (err.status, err.error) == (401, "invalid_token")
    assert err.www_authenticate.startswith('Bearer error="invalid_token"')
    err = await refused(rs, f"DPoP {token}", dpop_proof(generate_jwk("ES256"), "GET", API_URL, token))
    assert (err.status, err.error) == (401, "invalid_token")
    assert err.www_authenticate.startswith('DPoP error="invalid_token"')
    err = await refused(rs, f"DPoP {token}")
    assert (err.status, err.error) == (401, "invalid_dpop_proof")
    assert 'algs="ES256 PS256 EdDSA Ed25519"' in err.www_authenticate
    replayed = dpop_proof(key, "GET", API_URL, token)
    await call(rs, f"DPoP {token}", replayed)
    assert (await refused(rs, f"DPoP {token}", replayed)).error == "invalid_dpop_proof"

"""The last hop, end to end over real HTTP: ``jarmor.client`` completes a ``high`` flow with DPoP against a
real ``jarmor serve``; a real API (Starlette under uvicorn, protected by ``jarmor.resource``) accepts the
access token with a proof from the client's key, and refuses it replayed from another key, without a proof,
or as a bearer token, each with the right ``WWW-Authenticate`` (issue 13, "Done when").

Two token formats from one server: the ``high`` tier issues RFC 9068 JWT access tokens (checked against the
server's JWKS), ``elevated`` opaque ones (checked by introspection with an administrator-registered resource
server's credentials).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from jarmor.cli.demo_user import DemoUser
from jarmor.client import ClientConfig, OAuthClient
from jarmor.client.dpop import DPoP
from jarmor.jose import generate_jwk
from jarmor.resource import IntrospectionVerifier, JwtAccessTokenVerifier, Requirement, ResourceServer
from tests.interop.peers import REDIRECT_URI

from .conftest import RunningServer, enrol_person, follow, free_port, start_server, stop_server
from .resource_api import AUDIENCE, CONFIG, Api, register_resource_server

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("resource-e2e")
    (workdir / "jarmor.toml").write_text(CONFIG)
    running = start_server(workdir, "--config", str(workdir / "jarmor.toml"), auto_approve=None)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> DemoUser:
    return enrol_person(server)


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[Api]:
    creds = register_resource_server(server.database, server.workdir, "Orders API")
    rs = ResourceServer(
        verifier=IntrospectionVerifier(endpoint=f"{server.issuer}/introspect", client_id=creds["client_id"],
                                       client_secret=creds["client_secret"], issuer=server.issuer),
        jwt_verifier=JwtAccessTokenVerifier(issuer=server.issuer, audience=AUDIENCE),
    )

    async def orders(request: Request) -> JSONResponse:
        p = request.state.principal
        return JSONResponse({"sub": p.subject, "client_id": p.client_id,
                             "binding": p.binding.method if p.binding else None})

    with Api(rs, free_port(), "/orders", orders, Requirement(scopes=["openid"])) as running:
        yield running


def dpop_client(server: RunningServer, tier: str) -> OAuthClient:
    key = generate_jwk("ES256")
    registration = server.register({
        "client_name": f"{tier} app", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]}, "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256", "request_object_signing_alg": "ES256",
        "token_endpoint_auth_signing_alg": "ES256", "grant_types": ["authorization_code", "refresh_token"],
        "risk_tier": tier, "dpop_bound_access_tokens": True,
    })
    return OAuthClient(ClientConfig.from_registration(registration, issuer=server.issuer, signing_key=key,
                                                      redirect_uri=REDIRECT_URI, allow_insecure_http=True))


@pytest.mark.parametrize(("tier", "jwt"), [("high", True), ("elevated", False)])
def test_a_dpop_flow_then_the_api_accepts_the_key_holder_only(server: RunningServer, api: Api, alice: DemoUser,
                                                             tier: str, jwt: bool) -> None:
    with dpop_client(server, tier) as rp:
        start = rp.start_authorization(scope="openid", response_mode="jwt")
        login = rp.complete_authorization(follow(alice, start.url, tier), expected_state=start.state)
        tokens = login.tokens
        assert tokens.token_type == "DPoP"
        assert (tokens.access_token.count(".") == 2) is jwt
        ok = rp.request("GET", f"{api.url}/orders", tokens)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"sub": "alice", "client_id": rp.core.config.client_id, "binding": "dpop"}
        again = rp.request("GET", f"{api.url}/orders?page=2", tokens)  # a fresh proof each call
        assert again.status_code == 200
        now = rp.core.now()
    token = tokens.access_token

    thief = DPoP(None, "ES256")
    stolen = httpx.get(f"{api.url}/orders", headers={
        "Authorization": f"DPoP {token}", "DPoP": thief.proof("GET", f"{api.url}/orders", now=now, access_token=token)})
    assert stolen.status_code == 401
    assert stolen.headers["www-authenticate"].startswith('DPoP error="invalid_token", error_description=')
    assert stolen.headers["www-authenticate"].endswith('algs="ES256 PS256 EdDSA Ed25519"')

    no_proof = httpx.get(f"{api.url}/orders", headers={"Authorization": f"DPoP {token}"})
    assert no_proof.status_code == 401 and no_proof.json()["error"] == "invalid_dpop_proof"
    assert no_proof.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')

    as_bearer = httpx.get(f"{api.url}/orders", headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    assert as_bearer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert 'DPoP algs="ES256 PS256 EdDSA Ed25519"' in as_bearer.headers["www-authenticate"]

    nothing = httpx.get(f"{api.url}/orders")
    assert nothing.status_code == 401
    assert nothing.headers["www-authenticate"] == 'Bearer, DPoP algs="ES256 PS256 EdDSA Ed25519"'

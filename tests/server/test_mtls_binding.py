"""Certificate-bound tokens (RFC 8705 §3, §4) through the RFC 9440 proxy path: ``cnf["x5t#S256"]`` stored
and introspected for any client authentication method, no certificate → refused, a public client's refresh
token usable only with its certificate, and flow records naming the binding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jarmor.governance.chain import verify
from jarmor.governance.flows import summarize
from jarmor.protocol.mtls import ClientCertificate
from tests.certs import Issued, issue, subject_dn
from tests.kit import REDIRECT, Kit, TestClient, all_tokens, response_params
from tests.server.mtls_support import MtlsKit, mtls_kit
from tests.server.support import plain_request

pytestmark = pytest.mark.anyio
BOUND = {"tls_client_certificate_bound_access_tokens": True}


@pytest.fixture
async def mk(kit: Kit, tmp_path: Path) -> MtlsKit:
    return await mtls_kit(kit, tmp_path)


def _x5t(cert: Issued) -> str:
    return ClientCertificate(cert.der, chain_verified=False).thumbprint


async def _introspect(mk: MtlsKit, caller: TestClient, token: str) -> dict[str, Any]:
    async with mk.http() as http:
        r = await http.post("/introspect", data={"token": token}, headers=caller.basic())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_secret_client_gets_certificate_bound_tokens(mk: MtlsKit) -> None:
    client = await mk.kit.add_client(token_endpoint_auth_method="client_secret_basic", jwks=None,
                                     grant_types=["client_credentials"], redirect_uris=None, **BOUND)
    cert = issue(None, "self-signed is fine for binding")  # §3: binding needs no PKI
    async with mk.http() as http:
        r = await http.post("/token", data={"grant_type": "client_credentials"},
                            headers={**client.basic(), "Client-Cert": cert.header()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"  # RFC 8705 §3: bound, still a bearer token type
    info = await _introspect(mk, client, body["access_token"])
    assert info["cnf"] == {"x5t#S256": _x5t(cert)} and info["token_type"] == "Bearer"


async def test_no_certificate_is_refused_and_issues_nothing(mk: MtlsKit) -> None:
    client = await mk.kit.add_client(token_endpoint_auth_method="client_secret_basic", jwks=None,
                                     grant_types=["client_credentials"], redirect_uris=None, **BOUND)
    async with mk.http() as http:
        r = await http.post("/token", data={"grant_type": "client_credentials"}, headers=client.basic())
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "client certificate is required" in r.json()["error_description"]
    assert not all_tokens(mk.kit)


async def test_tls_client_auth_client_binds_to_its_certificate(mk: MtlsKit) -> None:
    cert = issue(mk.ca, "machine")
    client = await mk.kit.add_client(token_endpoint_auth_method="tls_client_auth", jwks=None,
                                     tls_client_auth_subject_dn=subject_dn(cert),
                                     grant_types=["client_credentials"], redirect_uris=None, **BOUND)
    r = await mk.post("/token", {"grant_type": "client_credentials", "client_id": client.client_id}, cert)
    assert r.status_code == 200, r.text
    [record] = [t for t in all_tokens(mk.kit) if t.kind == "access_token"]
    assert record.extra["cnf"] == {"x5t#S256": _x5t(cert)}


async def _public_code_flow(mk: MtlsKit, client: TestClient, cert: Issued) -> dict[str, Any]:
    params, verifier = plain_request(client, scope="openid offline_access")
    r = await mk.kit.authorize(params)
    code = response_params(r)["code"]
    r = await mk.post("/token", {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                 "code_verifier": verifier, "client_id": client.client_id}, cert)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_public_client_refresh_token_is_bound_to_its_certificate(mk: MtlsKit) -> None:
    client = await mk.kit.add_client(token_endpoint_auth_method="none", jwks=None, **BOUND)
    cert, other = issue(None, "public"), issue(None, "public")
    tokens = await _public_code_flow(mk, client, cert)
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client.client_id}
    for presented in (other, None):  # another certificate, or none: refused before the token is consumed
        r = await mk.post("/token", refresh, presented)
        assert r.status_code == 400, r.text
        assert r.json()["error"] in ("invalid_grant", "invalid_request")
    r = await mk.post("/token", refresh, cert)
    assert r.status_code == 200, r.text
    records = [t for t in all_tokens(mk.kit) if t.kind == "refresh_token" and t.rotated_to is None]
    assert all(t.extra.get("cnf") == {"x5t#S256": _x5t(cert)} for t in records)


async def test_refresh_with_another_certificate_is_invalid_grant(mk: MtlsKit) -> None:
    client = await mk.kit.add_client(token_endpoint_auth_method="none", jwks=None, **BOUND)
    cert, other = issue(None, "public"), issue(None, "public")
    tokens = await _public_code_flow(mk, client, cert)
    r = await mk.post("/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                 "client_id": client.client_id}, other)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_flow_record_names_the_certificate_binding(mk: MtlsKit) -> None:
    client = await mk.kit.add_client(token_endpoint_auth_method="none", jwks=None, **BOUND)
    cert = issue(None, "public")
    await _public_code_flow(mk, client, cert)
    await mk.kit.server.flows.flush()
    assert (await verify(mk.kit.store.flows)).ok
    [flow] = [f for f in summarize(await mk.kit.store.flows.scan(), mk.kit.env.now()) if f.client_id == client.client_id]
    assert flow.controls["sender_constraint"] == {"method": "mtls", "thumbprint": _x5t(cert)}
    assert "sender_constrained_tokens" in flow.applied

"""JWT access tokens (RFC 9068, checklist §T S99-S101) issued by jarmor when the effective tier asks, checked
by ``jarmor.resource`` against the server's published keys; introspection and revocation still work."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from jarmor.config import ConfigError, ServerConfig
from jarmor.jose import JwkSet, peek_header, verify_jws
from jarmor.protocol.context import Settings
from jarmor.protocol.policy import DEFAULT_TIERS, Policy, PolicyError, policy_from_config
from jarmor.resource import IntrospectionVerifier, JwtAccessTokenVerifier, ResourceError, ResourceServer
from tests.kit import ISSUER, Kit, TestClient

from .conftest import KitFactory

AUDIENCE = "https://api.example"


def _jwt_policy(tier: str = "baseline") -> Policy:
    tiers = dict(DEFAULT_TIERS)
    tiers[tier] = replace(tiers[tier], access_token_format="jwt")
    return Policy(tiers=tiers)


@pytest.fixture
async def jwt_kit(make: KitFactory) -> Kit:
    return await make(policy=_jwt_policy(), settings=Settings(access_token_audience=AUDIENCE))


async def _tokens(kit: Kit, client: TestClient) -> dict[str, Any]:
    r = (await kit.full_flow(client))["token"]
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _claims(kit: Kit, token: str) -> dict[str, Any]:
    keys = JwkSet.from_dict(kit.server.keyring.public_jwks())
    return verify_jws(token, keys, algorithms=["ES256", "PS256", "EdDSA", "Ed25519", "RS256"], typ=["at+jwt"],
                      typ_required=True).claims


async def test_a_code_flow_issues_a_jwt_access_token_with_the_required_claims(jwt_kit: Kit) -> None:
    client = await jwt_kit.add_client(risk_tier="baseline")
    body = await _tokens(jwt_kit, client)
    token = body["access_token"]
    assert peek_header(token)["typ"] == "at+jwt"
    claims = _claims(jwt_kit, token)
    assert {"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} <= set(claims)  # RFC 9068 §2.2
    assert (claims["iss"], claims["aud"], claims["sub"], claims["client_id"]) == (ISSUER, AUDIENCE, "alice",
                                                                                  client.client_id)
    assert claims["exp"] - claims["iat"] == body["expires_in"] and claims["scope"] == body["scope"]
    assert "cnf" not in claims and len(claims["jti"]) >= 22
    assert peek_header(body["id_token"]).get("typ") != "at+jwt"  # ID tokens never carry at+jwt (S99)
    assert len(body["refresh_token"]) < 64  # refresh tokens stay opaque


async def test_client_credentials_tokens_name_the_client_as_subject(jwt_kit: Kit) -> None:
    client = await jwt_kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                      scopes=["profile"])
    r = await jwt_kit.token(client, {"grant_type": "client_credentials", "scope": "profile"})
    assert r.status_code == 200, r.text
    claims = _claims(jwt_kit, r.json()["access_token"])
    assert claims["sub"] == claims["client_id"] == client.client_id


async def test_opaque_stays_the_default_and_tiers_choose_the_format(make: KitFactory) -> None:
    kit = await make(policy=_jwt_policy("high"), settings=Settings(access_token_audience=AUDIENCE))
    client = await kit.add_client(risk_tier="baseline")
    assert "." not in (await _tokens(kit, client))["access_token"]


async def test_the_resource_library_accepts_it_and_revocation_and_introspection_still_work(jwt_kit: Kit) -> None:
    client = await jwt_kit.add_client(risk_tier="baseline")
    rs_client = await jwt_kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_basic",
                                         jwks=None, grant_types=["client_credentials"], redirect_uris=[],
                                         resource_server=True)
    token = (await _tokens(jwt_kit, client))["access_token"]
    jwt_rs = ResourceServer(jwt_verifier=JwtAccessTokenVerifier(issuer=ISSUER, audience=AUDIENCE, http=jwt_kit.http))
    principal = await jwt_rs.authenticate(method="GET", url=f"{AUDIENCE}/x", authorization=f"Bearer {token}")
    assert (principal.subject, principal.client_id) == ("alice", client.client_id)
    introspecting = ResourceServer(verifier=IntrospectionVerifier(
        endpoint=f"{ISSUER}/introspect", client_id=rs_client.client_id, client_secret=rs_client.secret,
        issuer=ISSUER, http=jwt_kit.http, cache_ttl=0))
    assert (await introspecting.authenticate(method="GET", url=f"{AUDIENCE}/x",
                                             authorization=f"Bearer {token}")).subject == "alice"
    r = await jwt_kit.http.post("/revoke", data={**client.auth_form(), "token": token})
    assert r.status_code == 200
    with pytest.raises(ResourceError) as info:
        await introspecting.authenticate(method="GET", url=f"{AUDIENCE}/x", authorization=f"Bearer {token}")
    assert info.value.error == "invalid_token"


async def test_an_id_token_is_not_an_access_token(jwt_kit: Kit) -> None:
    client = await jwt_kit.add_client(risk_tier="baseline")
    id_token = (await _tokens(jwt_kit, client))["id_token"]
    rs = ResourceServer(jwt_verifier=JwtAccessTokenVerifier(issuer=ISSUER, audience=AUDIENCE, http=jwt_kit.http))
    with pytest.raises(ResourceError) as info:
        await rs.authenticate(method="GET", url=f"{AUDIENCE}/x", authorization=f"Bearer {id_token}")
    assert info.value.error == "invalid_token"


def test_the_format_is_validated_strictly() -> None:
    with pytest.raises(PolicyError, match="access_token_format must be 'opaque' or 'jwt'"):
        policy_from_config({"tiers": {"high": {"access_token_format": "JWT"}}})
    assert policy_from_config({"tiers": {"high": {"access_token_format": "jwt"}}}).tier("high").access_token_format == "jwt"
    with pytest.raises(ConfigError, match="access_token_audience"):
        ServerConfig(issuer=ISSUER, policy=_jwt_policy()).validate()
    ServerConfig(issuer=ISSUER, policy=_jwt_policy(), settings=Settings(access_token_audience=AUDIENCE)).validate()


async def test_a_dpop_bound_jwt_access_token_carries_cnf_and_refreshes_keep_auth_time(jwt_kit: Kit) -> None:
    """RFC 9449 §6.1 ``cnf.jkt``; RFC 9068 §2.2.1 ``auth_time`` unchanged across the grant's tokens."""
    from jarmor.jose import generate_jwk
    from jarmor.protocol.dpop import access_token_hash

    from .dpop_support import code_form, code_via_par, proof, token

    client = await jwt_kit.add_client(risk_tier="baseline")
    key = generate_jwk("ES256")
    code, verifier = await code_via_par(jwt_kit, client)
    r = await token(jwt_kit, client, code_form(code, verifier), proof(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"
    first = _claims(jwt_kit, body["access_token"])
    assert first["cnf"] == {"jkt": key.thumbprint()} and isinstance(first["auth_time"], int)
    r = await token(jwt_kit, client, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                    proof(key))
    assert r.status_code == 200, r.text
    refreshed_token = r.json()["access_token"]
    assert _claims(jwt_kit, refreshed_token)["auth_time"] == first["auth_time"]
    rs = ResourceServer(jwt_verifier=JwtAccessTokenVerifier(issuer=ISSUER, audience=AUDIENCE, http=jwt_kit.http))
    url = f"{AUDIENCE}/orders"
    ok = proof(key, url, htm="GET", ath=access_token_hash(refreshed_token))
    principal = await rs.authenticate(method="GET", url=url, authorization=f"DPoP {refreshed_token}", dpop=ok)
    assert principal.binding is not None and principal.binding.thumbprint == key.thumbprint()
    stolen = proof(generate_jwk("ES256"), url, htm="GET", ath=access_token_hash(refreshed_token))
    with pytest.raises(ResourceError) as info:
        await rs.authenticate(method="GET", url=url, authorization=f"DPoP {refreshed_token}", dpop=stolen)
    assert (info.value.error, info.value.www_authenticate[:26]) == ("invalid_token", 'DPoP error="invalid_token"')

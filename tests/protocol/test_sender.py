"""``protocol/sender.py`` called directly: the certificate binding the ``mtls`` adapter will feed
(RFC 8705 §3: ``cnf["x5t#S256"]``, ``token_type`` stays ``Bearer``), and which binding wins."""

from __future__ import annotations

from typing import Any

import pytest

from jarmor.jose import generate_jwk, sign_jws_embedded_jwk
from jarmor.protocol import errors
from jarmor.protocol.introspection import introspect_token
from jarmor.protocol.policy import Control, Policy, policy_from_config
from jarmor.protocol.tokens import token_endpoint, token_hash
from tests.kit import Kit, make_kit

THUMB = "A" * 43
KEY = generate_jwk("ES256")


async def _kit(policy: Policy | None = None) -> Kit:
    return await make_kit(policy=policy, reuse_server_keys=True)


async def _machine(kit: Kit, **meta: Any) -> Any:
    return await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                scope="profile", **meta)


def _proof(kit: Kit) -> str:
    return sign_jws_embedded_jwk({"jti": "j" * 22, "htm": "POST", "htu": kit.env.endpoints.token,
                                  "iat": kit.env.now()}, KEY, "ES256", typ="dpop+jwt")


async def test_a_declared_certificate_binding_binds_the_access_token() -> None:
    kit = await _kit()
    client = await _machine(kit, tls_client_certificate_bound_access_tokens=True)
    form = {**client.auth_form(), "grant_type": "client_credentials"}
    evidence: dict[str, Any] = {}
    result = await token_endpoint(kit.env, form, None, evidence=evidence, client_certificate_thumbprint=THUMB)
    assert result.body["token_type"] == "Bearer"
    record = await kit.store.tokens.get(token_hash(result.body["access_token"]))
    assert record is not None and record.extra["cnf"] == {"x5t#S256": THUMB}
    assert evidence["sender_constraint"] == {"method": "mtls", "thumbprint": THUMB}
    info = await introspect_token(kit.env, {**client.auth_form(), "token": result.body["access_token"]}, None)
    assert info["token_type"] == "Bearer" and info["cnf"] == {"x5t#S256": THUMB}
    # a DPoP proof takes precedence over the certificate
    result = await token_endpoint(kit.env, {**client.auth_form(), "grant_type": "client_credentials"}, None,
                                  dpop=[_proof(kit)], client_certificate_thumbprint=THUMB)
    assert result.body["token_type"] == "DPoP"
    await kit.http.aclose()


async def test_an_undeclared_certificate_binds_nothing_and_cannot_satisfy_the_control() -> None:
    policy = policy_from_config({"scopes": {"payments": "bound"}, "tiers": {
        "bound": {"rank": 5, "controls": ["pkce_s256", Control.SENDER_CONSTRAINED_TOKENS.value]}}})
    kit = await _kit(policy)
    client = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                  scope="profile payments")
    form = {**client.auth_form(), "grant_type": "client_credentials", "scope": "profile"}
    result = await token_endpoint(kit.env, form, None, client_certificate_thumbprint=THUMB)
    record = await kit.store.tokens.get(token_hash(result.body["access_token"]))
    assert record is not None and "cnf" not in record.extra
    form = {**client.auth_form(), "grant_type": "client_credentials", "scope": "payments"}
    with pytest.raises(errors.InvalidRequest, match="requires control sender_constrained_tokens"):
        await token_endpoint(kit.env, form, None, client_certificate_thumbprint=THUMB)
    await kit.http.aclose()

"""Positive flows end to end against the fake authorization server (async client)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from jarmor.client import AsyncOAuthClient, format_trace_event

from .fake_server import CLIENT_ID, ISSUER, REDIRECT_URI, callback

JARM_MODES = ["jwt", "query.jwt", "fragment.jwt", "form_post.jwt"]
PLAIN_MODES = ["query", "fragment", "form_post"]


@pytest.mark.parametrize("mode", JARM_MODES)
async def test_jarm_flow_in_every_mode(client: AsyncOAuthClient, fake: Any, begin: Any, mode: str) -> None:
    ro = await begin(client, response_mode=mode)
    assert ro["response_mode"] == mode
    result = await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert result.code == ro["_code"]
    assert result.flow.issuer == ISSUER and result.response_mode == mode
    tokens = await client.exchange_code(result)
    assert tokens.token_type == "Bearer" and tokens.scope == "accounts"
    assert fake.calls("/token") == 1
    form = fake.token_forms[0]
    assert form["code"] == ro["_code"] and form["redirect_uri"] == REDIRECT_URI
    assert set(form) == {"grant_type", "code", "redirect_uri", "code_verifier", "client_id"} | {
        "client_assertion_type",
        "client_assertion",
    }


@pytest.mark.parametrize("mode", PLAIN_MODES)
async def test_plain_flow_with_iss(client: AsyncOAuthClient, fake: Any, begin: Any, mode: str) -> None:
    ro = await begin(client, response_mode=mode)
    params = {"code": ro["_code"], "state": ro["state"], "iss": ISSUER}
    result = await client.handle_callback(callback(ro, params), expected_state=ro["state"])
    assert result.code == ro["_code"]
    await client.exchange_code(result)


async def test_plain_flow_without_iss_when_not_advertised(
    client: AsyncOAuthClient, fake: Any, begin: Any
) -> None:
    fake.metadata["authorization_response_iss_parameter_supported"] = False
    ro = await begin(client, response_mode="query")
    result = await client.handle_callback(callback(ro, {"code": ro["_code"], "state": ro["state"]}), expected_state=ro["state"])
    assert result.code == ro["_code"]


async def test_encrypted_jarm(make_client: Any, make_config: Any, fake: Any, begin: Any) -> None:
    client = make_client(make_config(authorization_encrypted_response_alg="ECDH-ES+A128KW"))
    ro = await begin(client)
    token = fake.jarm(ro, encrypt=True)
    assert token.count(".") == 4
    result = await client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])
    assert result.code == ro["_code"]


async def test_encrypted_jarm_with_registered_enc(
    make_client: Any, make_config: Any, fake: Any, begin: Any
) -> None:
    config = make_config(
        authorization_encrypted_response_alg="ECDH-ES+A128KW", authorization_encrypted_response_enc="A256GCM"
    )
    client = make_client(config)
    ro = await begin(client)
    token = fake.encrypt_to_client(fake.jarm(ro), enc="A256GCM")
    assert (await client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])).code == ro["_code"]


async def test_encrypted_request_object_via_par(
    make_client: Any, make_config: Any, fake: Any, begin: Any
) -> None:
    client = make_client(make_config(request_object_encryption_alg="RSA-OAEP-256"))
    ro = await begin(client, encrypt_request=True)
    from jarmor.jose import peek_header

    header = peek_header(fake.par_forms[0]["request"])
    assert header == {"alg": "RSA-OAEP-256", "enc": "A128CBC-HS256", "kid": "as-enc-1", "cty": "JWT"}
    assert ro["client_id"] == CLIENT_ID  # the fake AS decrypted, then verified the inner JWS
    assert fake.calls("/jwks") == 1


async def test_request_object_by_value(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, use_par=False)
    assert fake.calls("/par") == 0
    result = await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert result.code == ro["_code"]


async def test_openid_flow_validates_id_token(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, scope="openid accounts")
    assert isinstance(ro["nonce"], str) and len(ro["nonce"]) <= 64
    result = await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    tokens = await client.exchange_code(result)
    assert tokens.id_token_claims is not None
    assert tokens.id_token_claims["sub"] == "alice"
    assert tokens.id_token_claims["nonce"] == ro["nonce"]


async def test_refresh_and_client_credentials(client: AsyncOAuthClient, fake: Any) -> None:
    tokens = await client.client_credentials("accounts")
    assert tokens.scope == "accounts" and tokens.expires_at is not None
    refreshed = await client.refresh("rt-1")
    assert refreshed.refresh_token is not None
    grant_types = [f["grant_type"] for f in fake.token_forms]
    assert grant_types == ["client_credentials", "refresh_token"]
    assertions = [f["client_assertion"] for f in fake.token_forms]
    assert len(set(assertions)) == 2  # a fresh assertion per request (C20)


async def test_client_secret_basic(make_client: Any, make_config: Any, fake: Any) -> None:
    client = make_client(
        make_config(token_endpoint_auth_method="client_secret_basic", client_secret="s3cr:t&")
    )
    await client.client_credentials()
    request = next(r for r in fake.requests if r.url.path == "/token")
    scheme, value = request.headers["authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == "client-1:s3cr%3At%26"  # RFC 6749 §2.3.1 form-encoding
    assert "client_secret" not in fake.token_forms[0] and "client_assertion" not in fake.token_forms[0]


async def test_client_secret_post(make_client: Any, make_config: Any, fake: Any) -> None:
    client = make_client(make_config(token_endpoint_auth_method="client_secret_post", client_secret="pw"))
    await client.client_credentials()
    assert fake.token_forms[0]["client_secret"] == "pw"
    assert "authorization" not in next(r for r in fake.requests if r.url.path == "/token").headers


async def test_expected_state_from_session(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    result = await client.handle_callback(
        callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"]
    )
    assert result.flow.state == ro["state"]


async def test_metadata_and_jwks_are_cached(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    for _ in range(3):
        ro = await begin(client)
        await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert fake.calls("/.well-known/oauth-authorization-server") == 1
    assert fake.calls("/jwks") == 1


async def test_key_rotation_refetches_jwks(
    client: AsyncOAuthClient, fake: Any, begin: Any, keys: Any
) -> None:
    ro = await begin(client)
    await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    fake.published.append(keys.as_sig_2)
    ro = await begin(client)
    token = fake.sign(fake.response_claims(ro), key=keys.as_sig_2)
    assert (await client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])).code == ro["_code"]
    assert fake.calls("/jwks") == 2


async def test_trace_reports_every_hop(make_client: Any, fake: Any, begin: Any) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    client = make_client(trace=lambda hop, details: events.append((hop, dict(details))))
    ro = await begin(client, scope="openid")
    result = await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    await client.exchange_code(result)
    hops = [hop for hop, _ in events]
    assert hops == [
        "discovery",
        "request_object",
        "par",
        "authorization_request",
        "jwks",
        "jarm",
        "token",
        "id_token",
    ]
    jarm_line = format_trace_event(*events[hops.index("jarm")])
    assert "signature ES256 kid=as-sig-1 verified" in jarm_line
    assert "iss == issuer" in jarm_line and "aud == client_id" in jarm_line
    assert "exp in 300s" in jarm_line and "state matches stored flow of this session" in jarm_line
    text = repr(events)
    assert result.code not in text and result.flow.code_verifier not in text  # no secrets in the trace

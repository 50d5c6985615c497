"""Encrypted request objects (RFC 9101 §4, §6.1) and encrypted JARM (JARM §2.2): the critical tier."""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import replace
from typing import Any

import pytest

from jarmor.jose import JwkSet, decrypt_jwe, encrypt_jwe, generate_jwk, verify_jws
from jarmor.protocol import errors
from jarmor.protocol.policy import DEFAULT_TIERS, Control, Policy
from jarmor.protocol.registration import register
from tests.kit import REDIRECT, Kit, TestClient, response_params

from .conftest import KitFactory

ALGS = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW", "RSA-OAEP-256")
ENCS = ("A128GCM", "A256GCM", "A128CBC-HS256", "A256CBC-HS512")
JARM_MODES = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")


@pytest.fixture
async def kit(make: KitFactory) -> Kit:
    """Critical flows need AAL3 (the built-in tier requires ``authentication_assurance``): alice signs in
    with her device-bound passkey."""
    return await make(user="alice")


async def critical_client(
    kit: Kit,
    *,
    ro: tuple[str, str] = ("ECDH-ES", "A128GCM"),
    jarm: tuple[str, str] = ("ECDH-ES", "A128GCM"),
    **meta: Any,
) -> tuple[TestClient, Any]:
    sig = generate_jwk("ES256")
    enc = generate_jwk(jarm[0])
    client = await kit.add_client(
        key=sig,
        risk_tier="critical",
        jwks={"keys": [sig.public_dict(), enc.public_dict()]},
        request_object_encryption_alg=ro[0],
        request_object_encryption_enc=ro[1],
        authorization_encrypted_response_alg=jarm[0],
        authorization_encrypted_response_enc=jarm[1],
        **meta,
    )
    return client, enc


def server_enc_key(kit: Kit, alg: str) -> Any:
    return JwkSet.from_dict(kit.server.keyring.public_jwks()).select_encryption_key(alg)


def encrypt_ro(kit: Kit, token: str, alg: str, enc: str) -> str:
    return encrypt_jwe(token, server_enc_key(kit, alg), alg, enc, cty="oauth-authz-req+jwt")


def open_jarm(kit: Kit, client: TestClient, enc_key: Any, token: str, alg: str, enc: str) -> dict[str, Any]:
    jwe = decrypt_jwe(token, JwkSet((enc_key,)), algorithms=[alg], encryptions=[enc])
    assert jwe.header["alg"] == alg and jwe.header["enc"] == enc and jwe.header["kid"] == enc_key.kid
    inner = jwe.plaintext.decode()
    keys = JwkSet.from_dict(kit.server.keyring.public_jwks())
    return verify_jws(inner, keys, algorithms=["ES256"]).claims


@pytest.mark.parametrize(("alg", "enc"), list(itertools.product(ALGS, ENCS)))
async def test_critical_flow_every_alg_enc_pair(kit: Kit, alg: str, enc: str) -> None:
    client, enc_key = await critical_client(kit, ro=(alg, enc), jarm=(alg, enc))
    ro, ctx = client.request_object(response_mode="jwt")
    r = await kit.par(client, {"client_id": client.client_id, "request": encrypt_ro(kit, ro, alg, enc)})
    assert r.status_code == 201, r.text
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    params = response_params(r)
    assert set(params) == {"response"}
    assert params["response"].count(".") == 4  # a JWE
    claims = open_jarm(kit, client, enc_key, params["response"], alg, enc)
    assert (
        claims["iss"] == kit.env.issuer
        and claims["aud"] == client.client_id
        and claims["state"] == ctx["state"]
    )
    t = await kit.token(
        client,
        {
            "grant_type": "authorization_code",
            "code": claims["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": ctx["code_verifier"],
        },
    )
    assert t.status_code == 200, t.text


@pytest.mark.parametrize("mode", JARM_MODES)
@pytest.mark.parametrize("via_par", [True, False])
async def test_critical_flow_every_mode(kit: Kit, mode: str, via_par: bool) -> None:
    if (
        not via_par
    ):  # the built-in critical tier requires PAR; a custom tier without it exercises by-value JWEs
        tiers = dict(DEFAULT_TIERS)
        tiers["critical"] = replace(tiers["critical"], controls=tiers["critical"].controls - {Control.PAR})
        kit.server.env.policy = Policy(tiers=tiers)
    client, enc_key = await critical_client(kit, response_modes=list(JARM_MODES))
    ro, ctx = client.request_object(response_mode=mode)
    jwe = encrypt_ro(kit, ro, "ECDH-ES", "A128GCM")
    if via_par:
        r = await kit.par(client, {"client_id": client.client_id, "request": jwe})
        assert r.status_code == 201, r.text
        r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    else:
        r = await kit.authorize({"client_id": client.client_id, "request": jwe})
    params = response_params(r)
    if mode == "fragment.jwt":
        assert "#response=" in r.headers["location"]
    claims = open_jarm(kit, client, enc_key, params["response"], "ECDH-ES", "A128GCM")
    assert claims["state"] == ctx["state"] and "code" in claims


async def test_plain_signed_object_from_encrypting_client_is_refused(kit: Kit) -> None:
    # registered for encryption in a tier that does not itself require it: still refused (stricter than
    # OIDC Registration's MAY, and than oidc-provider)
    sig = generate_jwk("ES256")
    client = await kit.add_client(
        key=sig,
        risk_tier="high",
        request_object_encryption_alg="ECDH-ES",
        request_object_encryption_enc="A128GCM",
    )
    ro, _ = client.request_object()
    r = await kit.par(client, {"client_id": client.client_id, "request": ro})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request_object"
    assert "must be encrypted" in r.json()["error_description"]
    assert r.headers["cache-control"].startswith("no-store")


async def test_wrong_enc_for_registered_pair_is_refused(kit: Kit) -> None:
    client, _ = await critical_client(kit, ro=("ECDH-ES", "A128GCM"))
    ro, _ = client.request_object()
    r = await kit.par(
        client, {"client_id": client.client_id, "request": encrypt_ro(kit, ro, "ECDH-ES", "A256GCM")}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request_object"


async def test_critical_requires_encryption_even_if_unregistered_scope_raises_tier(kit: Kit) -> None:
    kit.server.env.policy = Policy(scope_tiers={"payments": "critical"})
    client = await kit.add_client(risk_tier="high")
    ro, _ = client.request_object(scope="openid payments", response_mode="jwt")
    r = await kit.par(client, {"client_id": client.client_id, "request": ro})
    assert r.status_code == 400
    assert r.json()["error"] in ("invalid_request_object", "unauthorized_client")
    assert "encrypted" in r.json()["error_description"]


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("ciphertext", "invalid_request_object"),
        ("tag", "invalid_request_object"),
        ("iv", "invalid_request_object"),
        ("kid", "invalid_request_object"),
    ],
)
async def test_tampered_jwe_request_object(kit: Kit, tamper: str, expected: str) -> None:
    client, _ = await critical_client(kit)
    ro, _ = client.request_object()
    jwe = encrypt_ro(kit, ro, "ECDH-ES", "A128GCM")
    h, k, iv, ct, tag = jwe.split(".")
    flip = lambda seg: seg[:-2] + ("A" if seg[-2] != "A" else "B") + seg[-1]  # noqa: E731
    if tamper == "ciphertext":
        ct = flip(ct)
    elif tamper == "tag":
        tag = flip(tag)
    elif tamper == "iv":
        iv = flip(iv)
    else:
        header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
        header["kid"] = "not-a-server-key"
        h = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    r = await kit.par(client, {"client_id": client.client_id, "request": ".".join((h, k, iv, ct, tag))})
    assert r.status_code == 400 and r.json()["error"] == expected
    assert not [k for k in kit.store.ephemeral._data if k[0] in ("par", "ro-jti")]


async def test_jwe_with_unsigned_payload_is_refused(kit: Kit) -> None:
    client, _ = await critical_client(kit)
    jwe = encrypt_jwe(b'{"iss":"x","client_id":"y"}', server_enc_key(kit, "ECDH-ES"), "ECDH-ES", "A128GCM")
    r = await kit.par(client, {"client_id": client.client_id, "request": jwe})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request_object"


async def test_registration_rules_for_encryption(kit: Kit) -> None:
    sig = generate_jwk("ES256")
    base = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [sig.public_dict()]},
    }
    with pytest.raises(errors.InvalidClientMetadata, match="encrypted_request_object"):
        await register(kit.env, {**base, "risk_tier": "critical"})
    with pytest.raises(errors.InvalidClientMetadata, match="requires request_object_encryption_alg"):
        await register(kit.env, {**base, "request_object_encryption_enc": "A128GCM"})
    with pytest.raises(errors.InvalidClientMetadata, match="not supported"):
        await register(kit.env, {**base, "request_object_encryption_alg": "RSA1_5"})
    with pytest.raises(errors.InvalidClientMetadata, match="not supported"):
        await register(kit.env, {**base, "request_object_encryption_alg": "PBES2-HS256+A128KW"})
    with pytest.raises(errors.InvalidClientMetadata, match="needs an encryption key"):
        await register(kit.env, {**base, "authorization_encrypted_response_alg": "ECDH-ES"})
    body = await register(kit.env, {**base, "request_object_encryption_alg": "RSA-OAEP-256"})
    assert body["request_object_encryption_enc"] == "A128CBC-HS256"  # the registration default


async def test_metadata_advertises_encryption(kit: Kit) -> None:
    meta = (await kit.http.get("/.well-known/oauth-authorization-server")).json()
    for name in (
        "request_object_encryption_alg_values_supported",
        "authorization_encryption_alg_values_supported",
    ):
        assert set(meta[name]) == set(ALGS) and "RSA1_5" not in meta[name]
    for name in (
        "request_object_encryption_enc_values_supported",
        "authorization_encryption_enc_values_supported",
    ):
        assert set(meta[name]) == set(ENCS)
    jwks = (await kit.http.get("/jwks")).json()
    enc_algs = {k["alg"] for k in jwks["keys"] if k.get("use") == "enc"}
    assert enc_algs == set(ALGS)

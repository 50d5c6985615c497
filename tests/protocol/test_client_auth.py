"""``authenticate_client``: RFC 6749 §2.3, RFC 7523 §3, OIDC Core §9, RFC 9126 §2, FAPI 2.0 §5.3.2.1-8.

Checklist S25, S26, S54, S56 and attack catalog group C (A55-A59), called directly with the server
environment (no HTTP): each refusal is ``invalid_client`` (401) unless the request itself is malformed.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from jarmor.jose import generate_jwk
from jarmor.jose.testing import keyring
from jarmor.protocol import errors
from jarmor.protocol.client_auth import authenticate_client, check_authentication_for_tier
from jarmor.protocol.clients import Client
from jarmor.protocol.policy import DEFAULT_TIERS
from tests.kit import ASSERTION_TYPE, ISSUER, Kit, TestClient

ENDPOINTS = {"token": ISSUER + "/token", "par": ISSUER + "/par", "introspection": ISSUER + "/introspect",
             "revocation": ISSUER + "/revoke"}


def pkj_form(client: TestClient, **claims: Any) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": client.assertion(**claims)}


async def auth(kit: Kit, form: dict[str, str], authorization: str | None = None,
               endpoint: str = "token") -> Any:
    return await authenticate_client(kit.env, form, authorization, endpoint=endpoint)


async def refused(kit: Kit, form: dict[str, str], authorization: str | None = None, endpoint: str = "token",
                  error: str = "invalid_client") -> errors.OAuthError:
    with pytest.raises(errors.OAuthError) as exc:
        await auth(kit, form, authorization, endpoint)
    assert exc.value.error == error
    assert exc.value.status == (401 if error == "invalid_client" else 400)
    return exc.value


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- S26 / A55: the audience, per endpoint and tier ---------------------------------------------------

AUDS: dict[str, Any] = {
    "issuer": ISSUER,
    "token": ENDPOINTS["token"],
    "par": ENDPOINTS["par"],
    "introspection": ENDPOINTS["introspection"],
    "revocation": ENDPOINTS["revocation"],
    "issuer in array": [ISSUER, "https://other.example"],
    "token in array": [ENDPOINTS["token"]],
    "other": "https://attacker.example",
    "issuer with slash": ISSUER + "/",
    "empty array": [],
}


def accepted_audiences(tier: str, endpoint: str) -> set[str]:
    if tier == "high":
        return {"issuer"}
    out = {"issuer", "token", "issuer in array", "token in array"}
    if endpoint in ("par", "introspection", "revocation"):
        out.add(endpoint)
    return out


@pytest.mark.parametrize("tier", ["baseline", "elevated", "high"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_audience_matrix(kit: Kit, tier: str, endpoint: str) -> None:
    client = await kit.add_client(risk_tier=tier)
    for name, aud in AUDS.items():
        form = pkj_form(client, aud=aud)
        if name in accepted_audiences(tier, endpoint):
            result = await auth(kit, form, endpoint=endpoint)
            assert result.client.client_id == client.client_id and result.method == "private_key_jwt"
        else:
            await refused(kit, form, endpoint=endpoint)


# --- S56: assertion checks ------------------------------------------------------------------------------


async def test_valid_assertion_and_evidence(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    result = await auth(kit, pkj_form(client))
    assert result.evidence == {"method": "private_key_jwt", "alg": "ES256", "kid": client.key.kid, "aud": "issuer"}


async def test_lifetime_bounds(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    now = kit.env.now()
    await auth(kit, pkj_form(client, exp=now + 600))
    await refused(kit, pkj_form(client, exp=now + 700))
    await auth(kit, pkj_form(client, exp=now - 10))  # clock skew
    await refused(kit, pkj_form(client, exp=now - 11))
    await auth(kit, pkj_form(client, iat=now + 10, nbf=now + 10))
    await refused(kit, pkj_form(client, iat=now + 11))
    await refused(kit, pkj_form(client, exp=True))
    await refused(kit, pkj_form(client, iat="now"))


async def test_jti_rules(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    await auth(kit, pkj_form(client, jti="j" * 256))
    await refused(kit, pkj_form(client, jti="j" * 257))
    await refused(kit, pkj_form(client, jti=""))
    form = pkj_form(client)
    await auth(kit, form)
    err = await refused(kit, form, endpoint="par")
    assert "already been used" in err.description


@pytest.mark.parametrize(("typ", "ok"), [(None, True), ("JWT", True), ("client-authentication+jwt", True),
                                         ("oauth-authz-req+jwt", False), ("at+jwt", False), ("dpop+jwt", False)])
async def test_assertion_typ(kit: Kit, typ: str | None, ok: bool) -> None:
    """S56.9: a JWT typed as a request object (or any other kind) is not a client assertion."""
    from jarmor.jose.testing import sign_raw

    client = await kit.add_client(risk_tier="baseline")
    now = kit.env.now()
    claims = {"iss": client.client_id, "sub": client.client_id, "aud": ISSUER, "jti": f"t-{typ}", "exp": now + 60}
    header = {"alg": "ES256", "kid": client.key.kid} | ({"typ": typ} if typ else {})
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": sign_raw(header, claims, client.key,
                                                                                   "ES256")}
    if ok:
        await auth(kit, form)
    else:
        await refused(kit, form)


async def test_malformed_assertions(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    for token in ("", "a.b", "not a jwt", "e30.e30.", "x" * 70_000):
        await refused(kit, {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token})
    await refused(kit, pkj_form(client, sub=5))


async def test_unknown_and_disabled_clients(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    await refused(kit, pkj_form(client, iss="ghost", sub="ghost"))
    await refused(kit, {"client_id": "ghost"})
    rec = await kit.store.clients.get(client.client_id)
    assert rec is not None
    rec.disabled_at, rec.updated_at = 1, rec.updated_at + 1
    await kit.store.clients.update(rec)
    kit.server.directory.invalidate(client.client_id)
    await refused(kit, pkj_form(client))


async def test_key_rollover_is_picked_up(kit: Kit) -> None:
    """An assertion signed with a key added after the client was cached is found after a key refresh."""
    client = await kit.add_client(risk_tier="baseline")
    await auth(kit, pkj_form(client))
    new_key = generate_jwk("ES256", kid="rolled")
    rec = await kit.store.clients.get(client.client_id)
    assert rec is not None
    rec.metadata["jwks"] = {"keys": [client.key.public_dict(), new_key.public_dict()]}
    rec.updated_at += 1
    await kit.store.clients.update(rec)
    kit.server.directory.invalidate(client.client_id)
    await auth(kit, pkj_form(client, key=new_key))


# --- A58 / A59: methods -------------------------------------------------------------------------------


async def test_one_method_per_request(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_basic")
    assert client.secret
    await refused(kit, {**pkj_form(client), "client_secret": "x"}, error="invalid_request")
    await refused(kit, pkj_form(client), basic(client.client_id, client.secret), error="invalid_request")
    await refused(kit, {"client_secret": client.secret, "client_id": client.client_id},
                  basic(client.client_id, client.secret), error="invalid_request")


async def test_client_secret_basic(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_basic")
    assert client.secret
    result = await auth(kit, {}, basic(client.client_id, client.secret))
    assert result.method == "client_secret_basic"
    err = await refused(kit, {}, basic(client.client_id, "wrong"))
    assert err.www_authenticate and err.www_authenticate.startswith("Basic")
    await refused(kit, {"client_id": "other"}, basic(client.client_id, client.secret))
    for header in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(),
                   "Basic " + base64.b64encode(b"\xff\xfe:x").decode()):
        await refused(kit, {}, header)
    await refused(kit, {}, "Bearer abc", error="invalid_request")
    # the registered method only: Basic credentials are refused for a client_secret_post client
    post = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_post")
    assert post.secret
    await refused(kit, {}, basic(post.client_id, post.secret))
    assert (await auth(kit, {"client_id": post.client_id, "client_secret": post.secret})).method == \
        "client_secret_post"
    await refused(kit, {"client_id": client.client_id, "client_secret": client.secret})
    await refused(kit, {"client_secret": post.secret})


async def test_basic_credentials_are_form_decoded(kit: Kit) -> None:
    """RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding."""
    client = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_basic",
                                  client_id="a:b c")
    assert client.secret
    await auth(kit, {}, basic("a%3Ab+c", client.secret))


async def test_private_key_jwt_client_cannot_use_other_methods(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    await refused(kit, {"client_id": client.client_id})
    await refused(kit, {"client_id": client.client_id, "client_secret": ""})
    await refused(kit, {}, basic(client.client_id, ""))
    await refused(kit, {})


async def test_secret_less_client_never_matches_a_secret() -> None:
    """A59: a client without a secret hash never verifies (no None == None)."""
    c = Client.from_metadata("c", {"risk_tier": "baseline", "token_endpoint_auth_method": "none"})
    assert c.verify_secret("") is False and c.verify_secret("None") is False


async def test_public_client(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="none")
    assert (await auth(kit, {"client_id": client.client_id})).method == "none"


# --- the effective tier: authentication evidence held to a tier raised after it was gathered ---------------

AUD_FORMS: dict[str, Any] = {"issuer": ISSUER, "endpoint": ENDPOINTS["par"], "array": [ISSUER]}


@pytest.mark.parametrize("aud_form", list(AUD_FORMS))
@pytest.mark.parametrize("alg", ["ES256", "RS256"])
@pytest.mark.parametrize("tier", list(DEFAULT_TIERS))
async def test_authentication_checked_against_a_raised_tier(kit: Kit, tier: str, alg: str, aud_form: str) -> None:
    """A baseline client authenticates (its own tier accepts every alg and audience form); the effective tier
    then decides: its signing algorithms, and the issuer as a single string when it is a FAPI 2.0 tier."""
    key = keyring().c1_rsa if alg == "RS256" else None
    client = await kit.add_client(risk_tier="baseline", alg=alg, key=key)
    result = await auth(kit, pkj_form(client, aud=AUD_FORMS[aud_form]), endpoint="par")
    assert (result.alg, result.audience) == (alg, aud_form)
    assert result.evidence["aud"] == aud_form
    effective = DEFAULT_TIERS[tier]
    ok = effective.allows_alg(alg) and (aud_form == "issuer" or not effective.issuer_only_audience)
    if ok:
        check_authentication_for_tier(result, effective)
        return
    with pytest.raises(errors.OAuthError) as exc:
        check_authentication_for_tier(result, effective)
    assert exc.value.error == "invalid_client" and exc.value.status == 401
    assert f"tier {tier}" in exc.value.description


async def test_secret_authentication_fails_a_tier_requiring_private_key_jwt(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_post")
    result = await auth(kit, {"client_id": client.client_id, "client_secret": client.secret or ""})
    check_authentication_for_tier(result, DEFAULT_TIERS["baseline"])
    with pytest.raises(errors.OAuthError) as exc:
        check_authentication_for_tier(result, DEFAULT_TIERS["elevated"])
    assert exc.value.error == "invalid_client" and "control private_key_jwt" in exc.value.description


def test_issuer_only_audience_is_a_named_rule_of_the_fapi2_tiers() -> None:
    assert [t.name for t in DEFAULT_TIERS.values() if t.issuer_only_audience] == ["high", "critical"]

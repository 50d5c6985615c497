"""The risk-tier matrix: tiers are data (policy.py), enforced at registration and again per request.

A client has a tier, a scope can carry a tier, and the effective tier of a request is the strictest of them.
For every control a built-in tier requires, registration metadata that violates it is refused naming the
control, and the same metadata is accepted by tiers that do not require it. At request time a scope that
raises the tier brings its controls with it.
"""

from __future__ import annotations

import inspect
import itertools
import re
from typing import Any

import pytest

from jarmor.jose import generate_jwk
from jarmor.jose.testing import keyring
from jarmor.protocol import authorization, client_auth, par, request_object, responses, signing, tokens
from jarmor.protocol.policy import DEFAULT_TIERS, Control, Policy, policy_from_config
from jarmor.protocol.registration import register
from tests.kit import REDIRECT, Kit

from .conftest import KitFactory
from .support import (
    assert_json_error,
    assert_no_code,
    assert_redirect_error,
    code_from,
    now,
    plain_request,
    redeem,
)

SIG = generate_jwk("ES256", kid="tier-sig")
ENC = generate_jwk("ECDH-ES", kid="tier-enc")


def compliant(tier: str, **changes: Any) -> dict[str, Any]:
    """Metadata that satisfies every control of every built-in tier."""
    meta: dict[str, Any] = {
        "risk_tier": tier,
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [SIG.public_dict(), ENC.public_dict()]},
        "response_modes": ["jwt", "query.jwt"],
        "authorization_signed_response_alg": "ES256",
        "request_object_encryption_alg": "ECDH-ES",
        "authorization_encrypted_response_alg": "ECDH-ES",
        "dpop_bound_access_tokens": True,
    }
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


# metadata that violates one control, for the controls that registration can see
VIOLATIONS: dict[Control, dict[str, Any]] = {
    Control.PRIVATE_KEY_JWT: {"token_endpoint_auth_method": "client_secret_basic"},
    Control.SIGNED_REQUEST_OBJECT: {"require_signed_request_object": False},
    Control.PAR: {"require_pushed_authorization_requests": False},
    Control.JARM: {"response_modes": ["query", "jwt"]},
    Control.ENCRYPTED_REQUEST_OBJECT: {"request_object_encryption_alg": None},
    Control.ENCRYPTED_JARM: {"authorization_encrypted_response_alg": None},
    Control.SENDER_CONSTRAINED_TOKENS: {"dpop_bound_access_tokens": None},
}
MATRIX = [(tier, control) for tier in DEFAULT_TIERS for control in VIOLATIONS]


@pytest.mark.parametrize(("tier", "control"), MATRIX, ids=[f"{t}-{c.value}" for t, c in MATRIX])
async def test_registration_matrix(kit: Kit, tier: str, control: Control) -> None:
    assert (await register(kit.env, compliant(tier)))["risk_tier"] == tier
    bad = compliant(tier, **VIOLATIONS[control])
    if DEFAULT_TIERS[tier].requires(control):
        r = await kit.http.post("/register", json=bad, headers={"Authorization": "Bearer initial-token"})
        body = assert_json_error(r, "invalid_client_metadata")
        assert f"control {control.value}" in body["error_description"]
    else:
        assert (await register(kit.env, bad))["risk_tier"] == tier


def test_tiers_are_ordered_and_cumulative() -> None:
    tiers = sorted(DEFAULT_TIERS.values(), key=lambda t: t.rank)
    assert [t.name for t in tiers] == ["baseline", "elevated", "high", "critical"]
    for lower, higher in itertools.pairwise(tiers):
        assert lower.controls <= higher.controls
        assert set(higher.signing_algs) <= set(lower.signing_algs)
        assert higher.code_lifetime <= lower.code_lifetime
    assert "RS256" not in DEFAULT_TIERS["high"].signing_algs
    assert set(DEFAULT_TIERS["high"].signing_algs) <= {"PS256", "ES256", "EdDSA", "Ed25519"}


def test_checks_never_test_tier_names() -> None:
    """ARCHITECTURE: checks ask the policy whether a control is required; no tier name appears in them."""
    for module in (authorization, client_auth, par, request_object, responses, signing, tokens):
        source = inspect.getsource(module)
        for name in DEFAULT_TIERS:
            assert not re.search(rf"[\"']{name}[\"']", source), f"{module.__name__} names tier {name!r}"


# --- request time: a scope raises the tier ------------------------------------------------------------

PAYMENTS = Policy(scope_tiers={"payments": "high", "reports": "elevated"})


@pytest.fixture
async def pkit(make: KitFactory, request: pytest.FixtureRequest) -> Kit:
    return await make(policy=PAYMENTS, user="alice" if request.node.get_closest_marker("signs_in") else None)


async def test_scope_raises_baseline_to_elevated_controls(pkit: Kit) -> None:
    client = await pkit.add_client(risk_tier="baseline")
    params, _ = plain_request(client, scope="openid reports", response_mode="query")
    body = assert_redirect_error(pkit, await pkit.authorize(params), "invalid_request", state=params["state"])
    assert "tier elevated requires control jarm" in body["error_description"]
    params, _ = plain_request(client, scope="openid reports")  # no mode: the tier's default is JARM
    r = await pkit.authorize(params)
    body = assert_redirect_error(pkit, r, "invalid_request", client=client, state=params["state"])
    assert "control signed_request_object" in body["error_description"]
    ro, _ = client.request_object(scope="openid reports", response_mode="jwt")
    code_from(pkit, client, await pkit.authorize({"client_id": client.client_id, "request": ro}))
    params, _ = plain_request(client, scope="openid")  # the same client, a baseline scope: plain is fine
    code_from(pkit, client, await pkit.authorize(params))


@pytest.mark.signs_in
async def test_scope_raises_baseline_to_high_controls(pkit: Kit) -> None:
    client = await pkit.add_client(risk_tier="baseline")
    ro, ctx = client.request_object(scope="openid payments", response_mode="jwt")
    r = await pkit.authorize({"client_id": client.client_id, "request": ro})
    body = assert_redirect_error(pkit, r, "invalid_request", client=client, state=ctx["state"])
    assert "tier high requires control par" in body["error_description"]

    params, _ = plain_request(client, scope="openid payments", response_mode="jwt")
    body = assert_json_error(await pkit.par(client, params), "invalid_request")
    assert "control signed_request_object" in body["error_description"]

    ro, _ = client.request_object(scope="openid payments", response_mode="jwt", omit=("nbf",))
    body = assert_json_error(
        await pkit.par(client, {"request": ro, "client_id": client.client_id}), "invalid_request_object"
    )
    assert "nbf" in body["error_description"]
    assert_no_code(pkit)

    ro, ctx = client.request_object(scope="openid payments", response_mode="jwt")
    pushed = await pkit.par(client, {"request": ro, "client_id": client.client_id})
    assert pushed.status_code == 201, pushed.text
    r = await pkit.authorize({"client_id": client.client_id, "request_uri": pushed.json()["request_uri"]})
    params = code_from(pkit, client, r)
    refused = await redeem(pkit, client, params["code"], ctx["code_verifier"])
    body = assert_json_error(refused, "invalid_request")
    assert "tier high requires control sender_constrained_tokens" in body["error_description"]
    client.dpop_key = generate_jwk("ES256")  # the kit now proves this key (the code was not consumed)
    t = await redeem(pkit, client, params["code"], ctx["code_verifier"])
    assert t.status_code == 200, t.text
    assert t.json()["expires_in"] == DEFAULT_TIERS["high"].access_token_lifetime
    assert t.json()["token_type"] == "DPoP"


async def test_scope_raised_tier_refuses_rs256(pkit: Kit) -> None:
    client = await pkit.add_client(risk_tier="baseline", alg="RS256", key=keyring().c1_rsa)
    ro, _ = client.request_object(scope="openid payments", response_mode="jwt")
    body = assert_json_error(
        await pkit.par(client, {"request": ro, "client_id": client.client_id}), "invalid_request_object"
    )
    assert "RS256" in body["error_description"]
    ro, _ = client.request_object(scope="openid")
    assert (await pkit.par(client, {"request": ro, "client_id": client.client_id})).status_code == 201


async def test_scope_raised_tier_refuses_secret_authentication(pkit: Kit) -> None:
    client = await pkit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_post")
    ro, _ = client.request_object(scope="openid payments", response_mode="jwt")
    r = await pkit.par(client, {"request": ro})
    body = assert_json_error(r, "unauthorized_client")
    assert "control private_key_jwt" in body["error_description"]


@pytest.mark.signs_in
async def test_scope_raised_code_lifetime(pkit: Kit, clock: Any) -> None:
    """A code minted under the raised tier lives that tier's code lifetime (60 s), not the client's (300 s)."""
    client = await pkit.add_client(risk_tier="baseline")
    ro, ctx = client.request_object(scope="openid payments", response_mode="jwt")
    pushed = await pkit.par(client, {"request": ro, "client_id": client.client_id})
    r = await pkit.authorize({"client_id": client.client_id, "request_uri": pushed.json()["request_uri"]})
    code = code_from(pkit, client, r)["code"]
    clock.advance(61)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": ctx["code_verifier"],
        **client.auth_form(exp=now() + 120),
    }
    assert_json_error(await pkit.http.post("/token", data=form), "invalid_grant")


async def test_scope_raised_to_critical_needs_encryption(make: KitFactory) -> None:
    kit = await make(policy=Policy(scope_tiers={"vault": "critical"}))
    client = await kit.add_client(risk_tier="high")
    ro, _ = client.request_object(scope="openid vault", response_mode="jwt")
    body = assert_json_error(
        await kit.par(client, {"request": ro, "client_id": client.client_id}), "unauthorized_client"
    )
    assert "control encrypted_jarm" in body["error_description"]


async def test_a_configured_tier_is_enforced_like_the_built_in_ones(make: KitFactory) -> None:
    """Tiers are data: a tier defined in configuration brings exactly its controls."""
    policy = policy_from_config(
        {
            "tiers": {"partner": {"rank": 5, "controls": ["pkce_s256", "par"], "signing_algs": ["ES256"]}},
            "scopes": {"partner_api": "partner"},
        }
    )
    kit = await make(policy=policy)
    client = await kit.add_client(risk_tier="baseline")
    params, _ = plain_request(client, scope="openid partner_api")
    body = assert_redirect_error(kit, await kit.authorize(params), "invalid_request", state=params["state"])
    assert "tier partner requires control par" in body["error_description"]
    params, verifier = plain_request(client, scope="openid partner_api")  # PAR without a request object
    pushed = await kit.par(client, params)
    assert pushed.status_code == 201, pushed.text
    r = await kit.authorize({"client_id": client.client_id, "request_uri": pushed.json()["request_uri"]})
    assert (await redeem(kit, client, code_from(kit, client, r)["code"], verifier)).status_code == 200

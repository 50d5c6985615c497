"""A scope that raises the tier governs every hop of the request (issue: raised tiers stop at the checks that
know about them).

Each case is a client that satisfies its own (baseline) tier and every rule of the raised tier but one, asking
for a scope the test's policy ties to a stricter tier, and meets that one rule on one hop: PAR, the
authorization endpoint by value, the response (the registration changed between PAR and the authorization
request, RFC 7592), the token endpoint, a refresh, client credentials. Each asserts the precise OAuth error on
the right channel, that nothing was minted, consumed or revoked beyond what the hop itself spends (the
client's assertion ``jti``, a redeemed code), and that the flow record names the effective tier and the
error's channel. The positive cases show a compliant baseline client passing every hop under the raised
tier's algorithms and lifetimes, with the flow record evidencing each control.

Tiers in the test policy: ``payments`` -> high (with shorter PAR, refresh token and request object lifetimes
than the built-in, so the lifetimes are distinguishable from the baseline ones), ``vault`` -> critical, and
``ledger`` -> ``front``, a configured tier with high's controls but PAR, so that the authorization endpoint
by value can be reached under a raised tier.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from jarmor.governance.flows import summarize
from jarmor.governance.records import FlowEvent
from jarmor.jose import generate_jwk, peek_header
from jarmor.jose.testing import keyring
from jarmor.protocol.policy import FAPI_SIGNING_ALGS, policy_from_config
from jarmor.protocol.tokens import token_hash
from jarmor.server.accounts import add_user
from tests.kit import ASSERTION_TYPE, ISSUER, REDIRECT, Clock, Kit, TestClient, all_tokens, page_forms
from tests.server.support import (
    assert_error_page,
    assert_json_error,
    assert_redirect_error,
    code_from,
    plain_request,
)
from tests.server.test_encryption import encrypt_ro

from .conftest import KitFactory
from .support import Snapshot, assert_unchanged, snapshot

POLICY = policy_from_config({
    "tiers": {
        "high": {"par_lifetime": 30, "refresh_token_lifetime": 7200, "request_object_max_lifetime": 600},
        "front": {
            "rank": 4,
            "controls": ["pkce_s256", "signed_request_object", "jarm", "private_key_jwt", "request_object_nbf",
                         "https_redirect_uris"],
            "signing_algs": list(FAPI_SIGNING_ALGS),
            "code_lifetime": 60,
            "access_token_lifetime": 600,
        },
    },
    "scopes": {"payments": "high", "vault": "critical", "ledger": "front"},
})
PAY, VAULT, LEDGER = "openid payments", "openid vault", "openid ledger"
APP_URI = "com.example.app:/cb"  # a second redirect URI: fine for baseline, not under https_redirect_uris
HTTPS_URI = "https://client.example/cb"
EC = generate_jwk("ES256", kid="m-ec")
RSA = keyring().c1_rsa  # RSA without alg: usable for PS256 (allowed) and RS256 (not)
ENC = generate_jwk("ECDH-ES", kid="m-enc")
DPOP = generate_jwk("ES256", kid="m-dpop")
AUTH = ("assertion-jti",)  # what an authenticated request spends even when it is refused
# a refused redemption still uses up its code (RFC 6749 §10.5), and the DPoP proof it carried (RFC 9449 §11.1)
REDEEMED = ("assertion-jti", "code", "code-used", "dpop-jti")
FORBIDDEN_IN_UPDATE = ("registration_access_token", "registration_client_uri", "client_secret_expires_at",
                       "client_id_issued_at", "client_secret")


@pytest.fixture
async def kit(make: KitFactory) -> Kit:
    """Raised to high (AAL2) or critical (AAL3), a request needs a real sign-in: alice signs in with her
    device-bound passkey (``make_kit(user=...)``); auto-approve could not meet the level."""
    return await make(policy=POLICY, user="alice")


async def client_for(kit: Kit, **changes: Any) -> TestClient:
    """A baseline client that would satisfy every rule of high (and front) — but for ``changes``."""
    meta: dict[str, Any] = {
        "risk_tier": "baseline",
        "redirect_uris": [REDIRECT, APP_URI, HTTPS_URI],
        "jwks": {"keys": [EC.public_dict(), RSA.public_dict(), ENC.public_dict()]},
        "response_modes": ["jwt", "query.jwt", "query"],
        "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256",
    }
    meta.update(changes)
    client = await kit.add_client(key=EC, alg="ES256", **meta)
    client.dpop_key = DPOP  # high requires sender-constrained tokens: the kit proves this key at /token
    return client


async def reregister(kit: Kit, client: TestClient, **changes: Any) -> None:
    """RFC 7592 §2.2: the client replaces its registration (still valid for its own, baseline, tier)."""
    body = {k: v for k, v in client.metadata.items() if k not in FORBIDDEN_IN_UPDATE}
    body.update(changes)
    r = await kit.http.put(
        client.metadata["registration_client_uri"], json={k: v for k, v in body.items() if v is not None},
        headers={"Authorization": f"Bearer {client.metadata['registration_access_token']}"},
    )
    assert r.status_code == 200, r.text
    client.metadata = r.json()
    client.secret = client.metadata.get("client_secret", client.secret)


def rs256_assertion(client: TestClient, **claims: Any) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client.assertion(key=RSA, alg="RS256", **claims)}


async def push(kit: Kit, client: TestClient, scope: str = PAY, **claims: Any) -> tuple[str, dict[str, Any]]:
    ro, ctx = client.request_object(scope=scope, response_mode="jwt", **claims)
    r = await kit.par(client, {"request": ro, "client_id": client.client_id})
    assert r.status_code == 201, r.text
    return str(r.json()["request_uri"]), ctx


async def code_under(kit: Kit, client: TestClient, scope: str = PAY) -> tuple[str, dict[str, Any]]:
    uri, ctx = await push(kit, client, scope)
    r = await kit.authorize({"client_id": client.client_id, "request_uri": uri})
    return str(code_from(kit, client, r)["code"]), ctx


def code_form(code: str, ctx: dict[str, Any]) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": ctx["redirect_uri"],
            "code_verifier": ctx["code_verifier"]}


async def tokens_under(kit: Kit, client: TestClient) -> dict[str, Any]:
    code, ctx = await code_under(kit, client)
    t = await kit.token(client, code_form(code, ctx))
    assert t.status_code == 200, t.text
    body: dict[str, Any] = t.json()
    return body


async def events(kit: Kit) -> list[FlowEvent]:
    await kit.server.flows.flush()
    return [FlowEvent.from_payload(orjson.loads(r.body)) for r in await kit.store.flows.scan()]


# --- the matrix -------------------------------------------------------------------------------------------


@dataclass
class Hop:
    response: httpx.Response
    client: TestClient
    before: Snapshot
    allow: tuple[str, ...] = AUTH
    redirect_uri: str = REDIRECT


@dataclass(frozen=True)
class Case:
    rule: str  # a control, or a tier rule (signing_algs, issuer_only_audience, lifetimes)
    hop: str  # par | authorize | response | token | refresh | client_credentials
    error: str
    channel: str  # json | page | redirect (plain, RFC 9207 iss) | jarm (a JARM JWT the tier allows)
    needle: str  # what error_description must name
    run: Callable[[Kit, Clock], Awaitable[Hop]]
    tier: str | None = "high"  # the effective tier the record must name (None: refused before it was known)
    status: int = 400


CASES: list[Case] = []
STAGE = {"par": "par", "authorize": "authorize", "response": "authorize", "token": "token", "refresh": "token",
         "client_credentials": "token"}


def case(rule: str, hop: str, error: str, channel: str, needle: str, **kw: Any) -> Callable[..., Any]:
    def register(fn: Callable[[Kit, Clock], Awaitable[Hop]]) -> Callable[[Kit, Clock], Awaitable[Hop]]:
        CASES.append(Case(rule, hop, error, channel, needle, fn, **kw))
        return fn
    return register


async def at(kit: Kit, client: TestClient, call: Callable[[], Awaitable[httpx.Response]],
             allow: tuple[str, ...] = AUTH, redirect_uri: str = REDIRECT) -> Hop:
    before = snapshot(kit)
    return Hop(await call(), client, before, allow, redirect_uri)


def ro_par(kit: Kit, client: TestClient, ro: str, **assertion: Any) -> Callable[[], Awaitable[httpx.Response]]:
    return lambda: kit.par(client, {"request": ro, "client_id": client.client_id}, **assertion)


# PAR: every rule of high (critical for the encryption controls), the request otherwise compliant.

@case("private_key_jwt", "par", "unauthorized_client", "json", "control private_key_jwt")
async def _par_secret_client(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit, token_endpoint_auth_method="client_secret_post")
    ro, _ = c.request_object(scope=PAY, response_mode="jwt")
    return await at(kit, c, ro_par(kit, c, ro))


@case("signing_algs", "par", "invalid_client", "json", "client assertions signed with RS256", status=401)
async def _par_rs256_assertion(kit: Kit, clock: Clock) -> Hop:
    """Issue item 1: an RS256 assertion (PS256 request object, same RSA key) under a PS256/ES256/EdDSA tier."""
    c = await client_for(kit)
    ro, _ = c.request_object(scope=PAY, response_mode="jwt", key=RSA, alg="PS256")
    return await at(kit, c, ro_par(kit, c, ro, key=RSA, alg="RS256"))


@case("issuer_only_audience", "par", "invalid_client", "json", "issuer identifier as a single string", status=401)
async def _par_endpoint_audience(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=PAY, response_mode="jwt")
    return await at(kit, c, ro_par(kit, c, ro, aud=ISSUER + "/par"))


@case("issuer_only_audience", "par", "invalid_client", "json", "issuer identifier as a single string", status=401)
async def _par_array_audience(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=PAY, response_mode="jwt")
    return await at(kit, c, ro_par(kit, c, ro, aud=[ISSUER]))


@case("signing_algs", "par", "unauthorized_client", "json", "token_endpoint_auth_signing_alg RS256")
async def _par_registered_rs256_assertions(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit, token_endpoint_auth_signing_alg="RS256")
    ro, _ = c.request_object(scope=PAY, response_mode="jwt")
    return await at(kit, c, ro_par(kit, c, ro, key=RSA, alg="RS256"))


@case("signing_algs", "par", "unauthorized_client", "json", "authorization_signed_response_alg RS256")
async def _par_rs256_jarm(kit: Kit, clock: Clock) -> Hop:
    """Issue item 2 (JARM): refused before anything is signed, not signed with another alg."""
    c = await client_for(kit, authorization_signed_response_alg="RS256")
    ro, _ = c.request_object(scope=PAY, response_mode="jwt")
    return await at(kit, c, ro_par(kit, c, ro))


@case("signing_algs", "par", "unauthorized_client", "json", "id_token_signed_response_alg RS256")
async def _par_rs256_id_token(kit: Kit, clock: Clock) -> Hop:
    """Issue item 2 (ID token)."""
    c = await client_for(kit, id_token_signed_response_alg="RS256")
    ro, _ = c.request_object(scope=PAY, response_mode="jwt")
    return await at(kit, c, ro_par(kit, c, ro))


@case("https_redirect_uris", "par", "invalid_request", "json", "control https_redirect_uris")
async def _par_app_redirect(kit: Kit, clock: Clock) -> Hop:
    """Issue item 3."""
    c = await client_for(kit)
    ro, _ = c.request_object(scope=PAY, response_mode="jwt", redirect_uri=APP_URI)
    return await at(kit, c, ro_par(kit, c, ro))


@case("jarm", "par", "invalid_request", "json", "control jarm")
async def _par_plain_mode(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=PAY, response_mode="query")
    return await at(kit, c, ro_par(kit, c, ro))


@case("signed_request_object", "par", "invalid_request", "json", "control signed_request_object")
async def _par_unsigned(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    params, _ = plain_request(c, scope=PAY, response_mode="jwt")
    return await at(kit, c, lambda: kit.par(c, params))


@case("signing_algs", "par", "invalid_request_object", "json", "signed with RS256")
async def _par_rs256_request_object(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=PAY, response_mode="jwt", key=RSA, alg="RS256")
    return await at(kit, c, ro_par(kit, c, ro))


@case("request_object_nbf", "par", "invalid_request_object", "json", "nbf")
async def _par_no_nbf(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=PAY, response_mode="jwt", omit=("nbf",))
    return await at(kit, c, ro_par(kit, c, ro))


@case("request_object_max_lifetime", "par", "invalid_request_object", "json", "exceeds 600 s")
async def _par_long_request_object(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    t = int(time.time())
    ro, _ = c.request_object(scope=PAY, response_mode="jwt", nbf=t, iat=t, exp=t + 900)  # baseline: 3600 s
    return await at(kit, c, ro_par(kit, c, ro))


@case("encrypted_request_object", "par", "invalid_request_object", "json", "control encrypted_request_object",
      tier="critical")
async def _par_plain_request_object(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit, authorization_encrypted_response_alg="ECDH-ES")
    ro, _ = c.request_object(scope=VAULT, response_mode="jwt")
    return await at(kit, c, ro_par(kit, c, ro))


@case("encrypted_jarm", "par", "unauthorized_client", "json", "control encrypted_jarm", tier="critical")
async def _par_unencrypted_jarm(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=VAULT, response_mode="jwt")
    return await at(kit, c, ro_par(kit, c, encrypt_ro(kit, ro, "ECDH-ES", "A128GCM")))


# Authorization endpoint by value, under ``front`` (high's controls but PAR).

def by_value(kit: Kit, ro: str, client: TestClient) -> Callable[[], Awaitable[httpx.Response]]:
    return lambda: kit.authorize({"client_id": client.client_id, "request": ro})


@case("private_key_jwt", "authorize", "unauthorized_client", "jarm", "control private_key_jwt", tier="front")
async def _az_secret_client(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit, token_endpoint_auth_method="client_secret_post")
    ro, _ = c.request_object(scope=LEDGER, response_mode="jwt")
    return await at(kit, c, by_value(kit, ro, c))


@case("signing_algs", "authorize", "unauthorized_client", "jarm", "token_endpoint_auth_signing_alg RS256",
      tier="front")
async def _az_registered_rs256_assertions(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit, token_endpoint_auth_signing_alg="RS256")
    ro, _ = c.request_object(scope=LEDGER, response_mode="jwt")
    return await at(kit, c, by_value(kit, ro, c))


@case("signing_algs", "authorize", "unauthorized_client", "page", "authorization_signed_response_alg RS256",
      tier="front")
async def _az_rs256_jarm(kit: Kit, clock: Clock) -> Hop:
    """The error cannot travel in a JARM response signed RS256 either: it goes to the page."""
    c = await client_for(kit, authorization_signed_response_alg="RS256")
    ro, _ = c.request_object(scope=LEDGER, response_mode="jwt")
    return await at(kit, c, by_value(kit, ro, c))


@case("signing_algs", "authorize", "unauthorized_client", "jarm", "id_token_signed_response_alg RS256",
      tier="front")
async def _az_rs256_id_token(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit, id_token_signed_response_alg="RS256")
    ro, _ = c.request_object(scope=LEDGER, response_mode="jwt")
    return await at(kit, c, by_value(kit, ro, c))


@case("https_redirect_uris", "authorize", "invalid_request", "page", "control https_redirect_uris", tier="front")
async def _az_app_redirect(kit: Kit, clock: Clock) -> Hop:
    """Never redirected to the URI the tier forbids."""
    c = await client_for(kit)
    ro, _ = c.request_object(scope=LEDGER, response_mode="jwt", redirect_uri=APP_URI)
    return await at(kit, c, by_value(kit, ro, c))


@case("jarm", "authorize", "invalid_request", "redirect", "control jarm", tier="front")
async def _az_plain_mode(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=LEDGER, response_mode="query")
    return await at(kit, c, by_value(kit, ro, c))


@case("signed_request_object", "authorize", "invalid_request", "jarm", "control signed_request_object",
      tier="front")
async def _az_unsigned(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    params, _ = plain_request(c, scope=LEDGER)
    return await at(kit, c, lambda: kit.authorize(params))


@case("signing_algs", "authorize", "invalid_request_object", "jarm", "signed with RS256", tier="front")
async def _az_rs256_request_object(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=LEDGER, response_mode="jwt", key=RSA, alg="RS256")
    return await at(kit, c, by_value(kit, ro, c))


@case("request_object_nbf", "authorize", "invalid_request_object", "jarm", "nbf", tier="front")
async def _az_no_nbf(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=LEDGER, response_mode="jwt", omit=("nbf",))
    return await at(kit, c, by_value(kit, ro, c))


@case("par", "authorize", "invalid_request", "jarm", "control par")
async def _az_high_by_value(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    ro, _ = c.request_object(scope=PAY, response_mode="jwt")
    return await at(kit, c, by_value(kit, ro, c))


@case("signing_algs", "authorize", "unsupported_response_type", "page", "response_type", tier=None)
async def _az_early_error_rs256_jarm(kit: Kit, clock: Clock) -> Hop:
    """Refused before the scopes are checked: the error still does not travel as an RS256 JARM response for a
    request that names a scope of a tier forbidding RS256."""
    c = await client_for(kit, authorization_signed_response_alg="RS256")
    params, _ = plain_request(c, scope=LEDGER, response_mode="jwt", response_type="token")
    return await at(kit, c, lambda: kit.authorize(params))


@case("signing_algs", "authorize", "invalid_request_object", "page", "request object", tier=None)
async def _az_unverified_request_object_rs256_jarm(kit: Kit, clock: Clock) -> Hop:
    """A request object that does not verify: its (unverified) scope names the raised tier, so its error is
    not sent as an RS256 JARM response to the provisional target either."""
    c = await client_for(kit, authorization_signed_response_alg="RS256")
    ro, _ = c.request_object(scope=LEDGER, response_mode="jwt", key=generate_jwk("ES256", kid=EC.kid))
    return await at(kit, c, by_value(kit, ro, c))


@case("https_redirect_uris", "authorize", "unsupported_response_type", "page", "response_type", tier=None)
async def _az_early_error_app_redirect(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    params, _ = plain_request(c, scope=LEDGER, redirect_uri=APP_URI, response_type="token")
    return await at(kit, c, lambda: kit.authorize(params))


# The response: pushed compliantly, then the client changes its registration before the request_uri is used.

@case("authentication_assurance", "authorize", "access_denied", "jarm", "authentication this request requires")
async def _az_password_only(kit: Kit, clock: Clock) -> Hop:
    """A payments request (raised to high: AAL2) signed in by a user with a password and no second factor:
    refused at the sign-in, never completed with the weaker sign-in; only the interaction (and the
    attempt counters) changed."""
    c = await client_for(kit)
    await add_user(kit.store.users, "bob", "password-123")
    uri, _ = await push(kit, c)
    page = await kit.http.get("/authorize", params={"client_id": c.client_id, "request_uri": uri})
    action, token = _form(page.text)
    form = {"method": "password", "csrf_token": token, "username": "bob", "password": "password-123"}
    return await at(kit, c, lambda: kit.http.post(action, data=form), allow=("interaction", "signin-interaction", "signin-address", "signin-account"))


def use(kit: Kit, client: TestClient, uri: str) -> Callable[[], Awaitable[httpx.Response]]:
    return lambda: kit.authorize({"client_id": client.client_id, "request_uri": uri})


@case("signing_algs", "response", "unauthorized_client", "page", "authorization_signed_response_alg RS256")
async def _rs_rs256_jarm(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    uri, _ = await push(kit, c)
    await reregister(kit, c, authorization_signed_response_alg="RS256")
    return await at(kit, c, use(kit, c, uri), allow=("par",))


@case("signing_algs", "response", "unauthorized_client", "jarm", "id_token_signed_response_alg RS256")
async def _rs_rs256_id_token(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    uri, _ = await push(kit, c)
    await reregister(kit, c, id_token_signed_response_alg="RS256")
    return await at(kit, c, use(kit, c, uri), allow=("par",))


@case("private_key_jwt", "response", "unauthorized_client", "jarm", "control private_key_jwt")
async def _rs_secret_client(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    uri, _ = await push(kit, c)
    await reregister(kit, c, token_endpoint_auth_method="client_secret_post")
    return await at(kit, c, use(kit, c, uri), allow=("par",))


@case("encrypted_jarm", "response", "unauthorized_client", "page", "control encrypted_jarm", tier="critical")
async def _rs_encryption_dropped(kit: Kit, clock: Clock) -> Hop:
    """A JARM response the tier requires encrypted is not sent signed only — not even to carry the error."""
    c = await client_for(kit, authorization_encrypted_response_alg="ECDH-ES")
    ro, _ = c.request_object(scope=VAULT, response_mode="jwt")
    r = await kit.par(c, {"request": encrypt_ro(kit, ro, "ECDH-ES", "A128GCM"), "client_id": c.client_id})
    assert r.status_code == 201, r.text
    await reregister(kit, c, authorization_encrypted_response_alg=None, authorization_encrypted_response_enc=None)
    return await at(kit, c, use(kit, c, r.json()["request_uri"]), allow=("par",))


# The token endpoint: a code issued under high, redeemed in a way only the baseline tier accepts.

async def redeem_with(kit: Kit, client: TestClient, auth: dict[str, str] | None = None,
                      change: dict[str, Any] | None = None) -> Hop:
    code, ctx = await code_under(kit, client)
    if change:
        await reregister(kit, client, **change)
    form = {**(auth if auth is not None else client.auth_form()), **code_form(code, ctx)}
    return await at(kit, client, lambda: kit.http.post("/token", data=form), allow=REDEEMED)


@case("signing_algs", "token", "invalid_client", "json", "client assertions signed with RS256", status=401)
async def _tk_rs256_assertion(kit: Kit, clock: Clock) -> Hop:
    """Issue item 1 at the token endpoint."""
    c = await client_for(kit)
    return await redeem_with(kit, c, rs256_assertion(c))


@case("issuer_only_audience", "token", "invalid_client", "json", "issuer identifier as a single string",
      status=401)
async def _tk_endpoint_audience(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    return await redeem_with(kit, c, c.auth_form(aud=ISSUER + "/token"))


@case("private_key_jwt", "token", "invalid_client", "json", "control private_key_jwt", status=401)
async def _tk_secret(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    return await redeem_with(kit, c, change={"token_endpoint_auth_method": "client_secret_post"})


@case("signing_algs", "token", "invalid_client", "json", "client assertions signed with RS256", status=401)
async def _tk_registered_rs256_assertions(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    code, ctx = await code_under(kit, c)
    await reregister(kit, c, token_endpoint_auth_signing_alg="RS256")
    form = {**rs256_assertion(c), **code_form(code, ctx)}
    return await at(kit, c, lambda: kit.http.post("/token", data=form), allow=REDEEMED)


@case("signing_algs", "token", "unauthorized_client", "json", "id_token_signed_response_alg RS256")
async def _tk_rs256_id_token(kit: Kit, clock: Clock) -> Hop:
    """Issue item 2 at the token endpoint: refused before anything is minted, not signed with another alg."""
    c = await client_for(kit)
    return await redeem_with(kit, c, change={"id_token_signed_response_alg": "RS256"})


@case("code_lifetime", "token", "invalid_grant", "json", "invalid or expired", tier=None)
async def _tk_late(kit: Kit, clock: Clock) -> Hop:
    """The code lives high's 60 s, not baseline's 300 s (the store dropped it: the record knows no tier)."""
    c = await client_for(kit)
    code, ctx = await code_under(kit, c)
    clock.advance(61)
    form = {**c.auth_form(exp=int(time.time()) + 120), **code_form(code, ctx)}
    return await at(kit, c, lambda: kit.http.post("/token", data=form), allow=REDEEMED)


# Refresh: the grant was issued under high; the refresh runs under the grant's tier.

async def refresh_with(kit: Kit, client: TestClient, auth: dict[str, str] | None = None,
                       change: dict[str, Any] | None = None) -> Hop:
    issued = await tokens_under(kit, client)
    if change:
        await reregister(kit, client, **change)
    form = {**(auth if auth is not None else client.auth_form()), "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"]}
    return await at(kit, client, lambda: kit.http.post("/token", data=form))


@case("signing_algs", "refresh", "invalid_client", "json", "client assertions signed with RS256", status=401)
async def _rf_rs256_assertion(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    return await refresh_with(kit, c, rs256_assertion(c))


@case("issuer_only_audience", "refresh", "invalid_client", "json", "issuer identifier as a single string",
      status=401)
async def _rf_endpoint_audience(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    return await refresh_with(kit, c, c.auth_form(aud=ISSUER + "/token"))


@case("private_key_jwt", "refresh", "invalid_client", "json", "control private_key_jwt", status=401)
async def _rf_secret(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    return await refresh_with(kit, c, change={"token_endpoint_auth_method": "client_secret_post"})


# Client credentials: the requested scope raises the tier of a machine client.

async def machine(kit: Kit) -> TestClient:
    client = await kit.add_client(key=EC, alg="ES256", risk_tier="baseline", grant_types=["client_credentials"],
                                  redirect_uris=None, jwks={"keys": [EC.public_dict(), RSA.public_dict()]})
    client.dpop_key = DPOP
    return client


@case("sender_constrained_tokens", "token", "invalid_request", "json", "control sender_constrained_tokens")
async def _tk_unbound(kit: Kit, clock: Clock) -> Hop:
    """A code issued under high, redeemed without a DPoP proof (or a bound certificate): refused before the
    code is used up, so the client can retry with a proof."""
    c = await client_for(kit)
    code, ctx = await code_under(kit, c)
    c.dpop_key = None
    form = {**c.auth_form(), **code_form(code, ctx)}
    return await at(kit, c, lambda: kit.http.post("/token", data=form))


@case("sender_constrained_tokens", "refresh", "invalid_request", "json", "control sender_constrained_tokens")
async def _rf_unbound(kit: Kit, clock: Clock) -> Hop:
    c = await client_for(kit)
    issued = await tokens_under(kit, c)
    c.dpop_key = None
    form = {**c.auth_form(), "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    return await at(kit, c, lambda: kit.http.post("/token", data=form))


@case("sender_constrained_tokens", "client_credentials", "invalid_request", "json",
      "control sender_constrained_tokens")
async def _cc_unbound(kit: Kit, clock: Clock) -> Hop:
    c = await machine(kit)
    c.dpop_key = None
    form = {**c.auth_form(), "grant_type": "client_credentials", "scope": "payments"}
    return await at(kit, c, lambda: kit.http.post("/token", data=form))


@case("signing_algs", "client_credentials", "invalid_client", "json", "client assertions signed with RS256",
      status=401)
async def _cc_rs256_assertion(kit: Kit, clock: Clock) -> Hop:
    c = await machine(kit)
    form = {**rs256_assertion(c), "grant_type": "client_credentials", "scope": "payments"}
    return await at(kit, c, lambda: kit.http.post("/token", data=form))


@case("issuer_only_audience", "client_credentials", "invalid_client", "json",
      "issuer identifier as a single string", status=401)
async def _cc_endpoint_audience(kit: Kit, clock: Clock) -> Hop:
    c = await machine(kit)
    form = {**c.auth_form(aud=ISSUER + "/token"), "grant_type": "client_credentials", "scope": "payments"}
    return await at(kit, c, lambda: kit.http.post("/token", data=form))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.hop}-{c.rule}-{c.run.__name__.lstrip('_')}" for c in CASES])
async def test_raised_tier_rule_holds_on_every_hop(kit: Kit, clock: Clock, case: Case) -> None:
    hop = await case.run(kit, clock)
    r = hop.response
    if case.channel == "json":
        body = assert_json_error(r, case.error, case.status)
        description = str(body.get("error_description", ""))
    elif case.channel == "page":
        assert_error_page(r, case.error)
        description = r.text
    else:  # a redirect the tier allows: plain with iss, or a JARM JWT signed with the client's allowed alg
        body = assert_redirect_error(kit, r, case.error, client=hop.client if case.channel == "jarm" else None,
                                     redirect_uri=hop.redirect_uri)
        description = str(body.get("error_description", ""))
    assert case.needle in description, description
    # nothing minted, consumed or revoked beyond what the hop itself spends
    assert_unchanged(kit, hop.before, allow=hop.allow)
    # the flow record of this hop: the refusal, its channel, and the effective tier it ran under
    last = [e for e in await events(kit) if e.stage == STAGE[case.hop]][-1]
    assert last.outcome == case.error
    assert last.channel == ("redirect" if case.channel in ("jarm", "redirect") else case.channel)
    assert last.tier == case.tier
    if case.tier is not None:
        assert any(case.tier in reason for reason in last.tier_reasons), last.tier_reasons


def test_every_control_of_the_raised_tiers_has_a_case() -> None:
    """The matrix covers every control the raised tiers add above baseline, and every algorithm/lifetime rule."""
    rules = {c.rule for c in CASES}
    raised = (POLICY.tier("critical").controls | POLICY.tier("front").controls) - POLICY.tier("baseline").controls
    assert {c.value for c in raised} <= rules
    assert {"signing_algs", "issuer_only_audience", "code_lifetime", "request_object_max_lifetime"} <= rules
    hops = {c.hop for c in CASES}
    assert hops == set(STAGE)


# --- positive: a compliant baseline client passes every hop under the raised tier ----------------------------


async def test_compliant_client_passes_every_hop_with_the_raised_tiers_algorithms_and_lifetimes(kit: Kit) -> None:
    high, base = POLICY.tier("high"), POLICY.tier("baseline")
    c = await client_for(kit)
    # PAR lifetime: the raised tier's, not the client's
    ro, _ = c.request_object(scope="openid", response_mode="jwt")
    plain = await kit.par(c, {"request": ro, "client_id": c.client_id})
    assert plain.status_code == 201 and plain.json()["expires_in"] == base.par_lifetime
    ro, ctx = c.request_object(scope=PAY, response_mode="jwt", redirect_uri=HTTPS_URI)
    pushed = await kit.par(c, {"request": ro, "client_id": c.client_id})
    assert pushed.status_code == 201 and pushed.json()["expires_in"] == high.par_lifetime == 30
    r = await kit.authorize({"client_id": c.client_id, "request_uri": pushed.json()["request_uri"]})
    params = code_from(kit, c, r)  # verified: signed ES256, the client's registered alg
    # code lifetime: the raised tier's
    data: dict[tuple[str, str], tuple[bytes, float]] = kit.store.ephemeral._data
    _, expires = data[("code", token_hash(params["code"]))]
    assert abs(expires - kit.env.now() - high.code_lifetime) <= 2
    t = await kit.token(c, code_form(params["code"], ctx))
    assert t.status_code == 200, t.text
    body = t.json()
    assert body["expires_in"] == high.access_token_lifetime == 600
    assert peek_header(body["id_token"])["alg"] == "ES256"
    lifetimes = {r.kind: r.expires_at - r.created_at for r in all_tokens(kit)}
    assert lifetimes == {"access_token": 600, "refresh_token": 7200}
    assert all(r.extra["tier"] == "high" for r in all_tokens(kit))
    # refresh: the grant's tier, even for a narrowed scope that alone would be baseline
    form = {**c.auth_form(), "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "scope": "openid"}
    t = await kit.http.post("/token", data=form)
    assert t.status_code == 200, t.text
    assert t.json()["expires_in"] == 600
    fresh = [r for r in all_tokens(kit) if r.rotated_to is None and r.revoked_at is None]
    assert {r.kind: r.expires_at - r.created_at for r in fresh} == {"access_token": 600, "refresh_token": 7200}

    evs = await events(kit)
    flow = [e for e in evs if e.flow_id == evs[1].flow_id]
    assert [e.stage for e in flow] == ["par", "authorize", "code", "token"]  # authorize: the sign-in began
    par, _, code, token = flow
    for e in flow:
        assert e.tier == "high" and e.client_tier == "baseline"
        assert "scope(s) payments require high" in e.tier_reasons
    assert par.controls["client_auth"] == {"method": "private_key_jwt", "alg": "ES256", "kid": EC.kid,
                                           "aud": "issuer"}
    assert par.controls["https_redirect_uri"] is True
    assert par.controls["jarm_alg"] == "ES256" and par.controls["id_token_alg"] == "ES256"
    assert code.controls["jarm"]["alg"] == "ES256" and code.expires_at == code.at + high.code_lifetime
    assert token.controls["client_auth"]["alg"] == "ES256" and token.controls["client_auth"]["aud"] == "issuer"
    assert token.controls["id_token"]["alg"] == "ES256"
    assert token.controls["lifetimes"] == {"access_token": 600, "refresh_token": 7200}
    refresh = evs[-1]
    assert refresh.grant_type == "refresh_token" and refresh.tier == "high"
    assert refresh.controls["lifetimes"] == {"access_token": 600, "refresh_token": 7200}
    await kit.server.flows.flush()
    summary = next(f for f in summarize(await kit.store.flows.scan(), kit.env.now()) if f.flow_id == par.flow_id)
    assert summary.outcome == "success" and summary.tier == "high" and not summary.gaps
    assert set(summary.required) <= set(summary.applied)
    assert {"par", "jarm", "private_key_jwt", "signed_request_object", "request_object_nbf",
            "https_redirect_uris", "pkce_s256", "authentication_assurance"} <= set(summary.applied)
    assert code.controls["authentication"]["required"] == "aal2", "the raised tier's level, not baseline's"


async def test_the_issue_client_is_refused_under_the_raised_tier_and_served_under_its_own(kit: Kit) -> None:
    """The client of the issue: an RSA key without alg, no token_endpoint_auth_signing_alg, RS256 responses and
    ID tokens, and a second redirect URI ``com.example.app:/cb``. Under its own tier it is served; a scope
    configured high refuses it on PAR (each item), and nothing is issued."""
    c = await kit.add_client(key=RSA, alg="PS256", risk_tier="baseline", redirect_uris=[REDIRECT, APP_URI],
                             authorization_signed_response_alg="RS256", id_token_signed_response_alg="RS256",
                             jwks={"keys": [RSA.public_dict()]})
    c.dpop_key = DPOP  # it binds its tokens (high requires it): the kit proves this key at /token
    before = snapshot(kit)
    for redirect_uri, needle in ((REDIRECT, "RS256"), (APP_URI, "https_redirect_uris")):
        ro, _ = c.request_object(scope=PAY, response_mode="jwt", redirect_uri=redirect_uri)
        r = await kit.par(c, {"request": ro, "client_id": c.client_id}, alg="RS256")
        body = r.json()
        assert r.status_code in (400, 401) and body["error"] in ("invalid_request", "unauthorized_client",
                                                                 "invalid_client"), body
        assert needle in body["error_description"]
    assert_unchanged(kit, before, allow=AUTH)
    # each item alone, with the others fixed (the matrix above has one case per item and hop)
    await reregister(kit, c, authorization_signed_response_alg="PS256", id_token_signed_response_alg="PS256")
    ro, _ = c.request_object(scope=PAY, response_mode="jwt")
    r = await kit.par(c, {"request": ro, "client_id": c.client_id}, alg="RS256")
    assert_json_error(r, "invalid_client", 401)
    assert re.search(r"client assertions signed with RS256", r.json()["error_description"])
    ro, _ = c.request_object(scope=PAY, response_mode="jwt", redirect_uri=APP_URI)
    assert_json_error(await kit.par(c, {"request": ro, "client_id": c.client_id}), "invalid_request")
    # and with all of it fixed, the raised tier serves the same client
    code, ctx = await code_under(kit, c)
    t = await kit.token(c, code_form(code, ctx))
    assert t.status_code == 200 and peek_header(t.json()["id_token"])["alg"] == "PS256"
    # its own tier still accepts what the raised one refuses
    await reregister(kit, c, authorization_signed_response_alg="RS256", id_token_signed_response_alg="RS256")
    code, ctx = await code_under(kit, c, scope="openid")
    form = {**rs256_assertion(c), **code_form(code, ctx)}
    t = await kit.http.post("/token", data=form)
    assert t.status_code == 200 and peek_header(t.json()["id_token"])["alg"] == "RS256"


async def test_code_response_is_refused_when_the_registration_changed_during_sign_in(make: KitFactory) -> None:
    """The last hop before a code exists: the client switched to RS256 JARM while the user signed in. No code
    is issued and no RS256 response is sent; the error goes to the page and the flow record says so."""
    kit = await make(policy=POLICY, user="alice")
    assert kit.user is not None
    c = await client_for(kit)
    uri, _ = await push(kit, c)
    r = await kit.http.get("/authorize", params={"client_id": c.client_id, "request_uri": uri})
    [passkey] = [f for f in page_forms(r.text) if f.method == "passkey-device"]  # high: AAL2 at least
    assert passkey.options is not None
    r = await kit.http.post(passkey.action, data={**passkey.fields, "credential": kit.user.device.get(passkey.options)})
    r = await kit.http.get(r.headers["location"])  # post/redirect/get: the consent page
    consent, token = _form(r.text)
    await reregister(kit, c, authorization_signed_response_alg="RS256")
    before = snapshot(kit)
    r = await kit.http.post(consent, data={"csrf_token": token, "decision": "approve"})
    assert_error_page(r, "unauthorized_client")
    assert "authorization_signed_response_alg RS256" in r.text
    assert_unchanged(kit, before, allow=("interaction",))
    last = (await events(kit))[-1]
    assert last.stage == "code" and last.outcome == "unauthorized_client" and last.tier == "high"
    assert last.channel == "page"


def _form(html: str) -> tuple[str, str]:
    from html import unescape

    action = re.search(r'<form method="post" action="([^"]+)"', html)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert action and token, html[:500]
    return unescape(action.group(1)), unescape(token.group(1))

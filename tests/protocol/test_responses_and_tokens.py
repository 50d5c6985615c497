"""Response encoding (responses.py) and token helpers (tokens.py) as functions.

RFC 9207 §2 (iss on plain responses), JARM §2.1-§2.3 (only ``response`` outside the JWT), RFC 7636 §4.1/§4.6
(verifier syntax, S256 comparison), FAPI 2.0 §5.4.1-4 (at least 128 bits of entropy).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from jarmor.jose import JwkSet, verify_jws
from jarmor.protocol import errors
from jarmor.protocol.clients import Client
from jarmor.protocol.errors import RedirectTarget
from jarmor.protocol.policy import DEFAULT_TIERS, Policy
from jarmor.protocol.responses import (
    FormPost,
    Redirect,
    check_code_response,
    error_response,
    render,
    target_allowed,
)
from jarmor.protocol.tokens import _pkce_ok, grant_tier, id_token, new_token, token_hash
from tests.kit import ISSUER, REDIRECT, Kit
from tests.server.conftest import KitFactory

BASE = DEFAULT_TIERS["baseline"]


async def client_record(kit: Kit) -> Client:
    tc = await kit.add_client(risk_tier="baseline")
    client = await kit.env.clients.get(tc.client_id)
    assert isinstance(client, Client)
    return client


@pytest.mark.parametrize(("mode", "part"), [("query", "query"), ("fragment", "fragment")])
async def test_plain_modes_carry_iss(kit: Kit, mode: str, part: str) -> None:
    client = await client_record(kit)
    target = RedirectTarget(REDIRECT, mode, "st", "c")
    resp, evidence = await render(kit.env, client, target, {"code": "abc"}, tier=BASE)
    assert isinstance(resp, Redirect)
    params = dict(parse_qsl(getattr(urlsplit(resp.location), part)))
    assert params == {"code": "abc", "state": "st", "iss": ISSUER}
    assert evidence == {"iss_emitted": "parameter"}


async def test_query_is_appended_to_an_existing_query(kit: Kit) -> None:
    client = await client_record(kit)
    target = RedirectTarget(REDIRECT + "?tenant=1", "query", None, "c")
    resp, _ = await render(kit.env, client, target, {"code": "abc"}, tier=BASE)
    assert isinstance(resp, Redirect)
    assert resp.location.startswith(REDIRECT + "?tenant=1&code=abc")


async def test_form_post(kit: Kit) -> None:
    client = await client_record(kit)
    resp, _ = await render(kit.env, client, RedirectTarget(REDIRECT, "form_post", "st", "c"),
                           {"code": "abc"}, tier=BASE)
    assert isinstance(resp, FormPost)
    assert resp.action == REDIRECT and dict(resp.fields) == {"code": "abc", "state": "st", "iss": ISSUER}


async def test_jarm_modes_carry_only_response(kit: Kit) -> None:
    client = await client_record(kit)
    for mode in ("query.jwt", "fragment.jwt", "form_post.jwt"):
        resp, evidence = await render(kit.env, client,
                                      RedirectTarget(REDIRECT, mode, "st", "c"), {"code": "abc"}, tier=BASE)
        fields = dict(resp.fields) if isinstance(resp, FormPost) else dict(
            parse_qsl(urlsplit(resp.location).query or urlsplit(resp.location).fragment))
        assert set(fields) == {"response"}
        assert evidence["iss_emitted"] == "jwt" and evidence["jarm"]["signed"] is True
        jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
        claims = verify_jws(fields["response"], jwks, algorithms=["ES256"]).claims
        assert claims["iss"] == ISSUER and claims["code"] == "abc" and claims["state"] == "st"
        assert 10 <= claims["exp"] - claims["iat"] <= 600


async def test_error_response_channels(kit: Kit) -> None:
    client = await client_record(kit)
    err = errors.InvalidScope("nope")
    assert await error_response(kit.env, client, err, tier=BASE) is None  # no target: a page
    err.with_target(RedirectTarget(REDIRECT, "query.jwt", "st", "c"))
    assert await error_response(kit.env, None, err, tier=BASE) is None  # JARM needs the client record
    out = await error_response(kit.env, client, err, tier=BASE)
    assert out is not None and isinstance(out[0], Redirect) and "response=" in out[0].location


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize(("verifier", "ok"), [
    ("a" * 43, True), ("A-._~" * 20 + "abc", True), ("a" * 128, True),
    ("a" * 42, False), ("a" * 129, False), ("a" * 42 + "+", False), ("a" * 42 + " ", False),
    ("a" * 42 + "é", False), (None, False),
])
def test_pkce_verifier(verifier: str | None, ok: bool) -> None:
    ch = challenge(verifier if verifier else "a" * 43)
    assert _pkce_ok(verifier, ch) is ok
    if ok:
        assert verifier is not None
        assert not _pkce_ok(verifier, challenge(verifier + "x"))
        assert not _pkce_ok(ch, ch)


def test_tokens_have_at_least_256_bits() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 43 for t in tokens)
    assert token_hash("x") == hashlib.sha256(b"x").hexdigest()


# --- the effective tier governs the response and the tokens (signing.py, grant_tier) ------------------------

HIGH, CRITICAL = DEFAULT_TIERS["high"], DEFAULT_TIERS["critical"]


async def rs256_client(kit: Kit, **meta: Any) -> Client:
    tc = await kit.add_client(risk_tier="baseline", authorization_signed_response_alg="RS256",
                              id_token_signed_response_alg="RS256", **meta)
    client = await kit.env.clients.get(tc.client_id)
    assert isinstance(client, Client)
    return client


async def test_jarm_is_never_signed_with_an_alg_the_tier_forbids(kit: Kit) -> None:
    client = await rs256_client(kit)
    target = RedirectTarget(REDIRECT, "query.jwt", "st", client.client_id)
    _, evidence = await render(kit.env, client, target, {"code": "abc"}, tier=BASE)
    assert evidence["jarm"]["alg"] == "RS256"
    with pytest.raises(errors.OAuthError) as exc:
        await render(kit.env, client, target, {"code": "abc"}, tier=HIGH)
    assert exc.value.error == "unauthorized_client"
    assert "authorization_signed_response_alg RS256" in exc.value.description
    with pytest.raises(errors.OAuthError):
        check_code_response(kit.env, client, "high", "query.jwt")
    assert check_code_response(kit.env, client, "high", "query") is HIGH  # a plain response signs nothing
    with pytest.raises(errors.OAuthError) as exc:
        check_code_response(kit.env, client, "no-such-tier", "query")
    assert exc.value.error == "unauthorized_client"


async def test_error_redirects_never_break_the_tier(kit: Kit) -> None:
    """An error response is a response: one the tier forbids (its JARM alg, a missing encryption, its redirect
    URI) is not produced; the error goes to the page (RFC 6749 §4.1.2.1)."""
    client = await rs256_client(kit, redirect_uris=[REDIRECT, "com.example.app:/cb"])
    err = errors.InvalidRequest("nope").with_target(RedirectTarget(REDIRECT, "query.jwt", "st", client.client_id))
    assert await error_response(kit.env, client, err, tier=BASE) is not None
    assert await error_response(kit.env, client, err, tier=HIGH) is None
    plain = RedirectTarget(REDIRECT, "query", "st", client.client_id)
    assert target_allowed(client, plain, HIGH)
    app = RedirectTarget("com.example.app:/cb", "query", "st", client.client_id)
    assert target_allowed(client, app, BASE) and not target_allowed(client, app, HIGH)
    es = await client_record(kit)  # ES256, not encrypted
    assert target_allowed(es, RedirectTarget(REDIRECT, "query.jwt", None, es.client_id), HIGH)
    assert not target_allowed(es, RedirectTarget(REDIRECT, "query.jwt", None, es.client_id), CRITICAL)


async def test_id_token_is_never_signed_with_an_alg_the_tier_forbids(kit: Kit) -> None:
    client = await rs256_client(kit)
    token, evidence = id_token(kit.env, client, tier=BASE, subject="alice", nonce=None, authentication={})
    assert evidence["alg"] == "RS256" and token.count(".") == 2
    with pytest.raises(errors.OAuthError) as exc:
        id_token(kit.env, client, tier=HIGH, subject="alice", nonce=None, authentication={})
    assert exc.value.error == "unauthorized_client" and "id_token_signed_response_alg RS256" in exc.value.description


async def test_grant_tier_is_never_weaker_than_recorded_or_current(make: KitFactory) -> None:
    kit = await make(policy=Policy(scope_tiers={"payments": "high"}))
    tc = await kit.add_client(risk_tier="baseline")
    client = await kit.env.clients.get(tc.client_id)
    assert client is not None
    # the recorded tier wins over the client's weaker own tier, and keeps its recorded reasons
    tier, reasons = grant_tier(kit.env, "high", client, "openid", ["scope(s) payments require high"])
    assert tier.name == "high" and reasons == ["scope(s) payments require high"]
    # a scope that is stricter now than when the grant was recorded: the current tier
    tier, reasons = grant_tier(kit.env, "baseline", client, "openid payments")
    assert tier.name == "high" and any("payments" in r for r in reasons)
    # a tier since removed from the policy, or none recorded: the current one
    assert grant_tier(kit.env, "gone", client, "openid")[0].name == "baseline"
    assert grant_tier(kit.env, None, client, "openid payments")[0].name == "high"

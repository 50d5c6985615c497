"""DPoP at the token and PAR endpoints over HTTP (RFC 9449; checklist S81-S88, S90; conformance suite §3.2).

Every refusal is the exact error of the checklist, leaves the code or refresh token usable where the checklist
says so, and issues no token; every success binds the access token to the proof key (introspection ``cnf``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from jarmor.jose import generate_jwk, peek_claims
from jarmor.jose.testing import sign_raw
from jarmor.protocol.policy import Control
from jarmor.protocol.tokens import token_hash
from tests.kit import Kit, TestClient, all_tokens

from .conftest import KitFactory
from .dpop_support import (
    PAR_URL,
    TOKEN_URL,
    code_by_value,
    code_form,
    code_via_par,
    introspect,
    par,
    proof,
    token,
)
from .support import assert_json_error

K1 = generate_jwk("ES256")
K2 = generate_jwk("ES256")


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


async def public(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="none", jwks=None)


def _access_tokens(kit: Kit) -> int:
    return sum(1 for t in all_tokens(kit) if t.kind == "access_token")


# --- S86: binding at the token endpoint ------------------------------------------------------------------


async def test_code_exchange_with_a_proof_issues_a_dpop_bound_token(kit: Kit, base: TestClient) -> None:
    code, verifier = await code_via_par(kit, base)
    r = await token(kit, base, code_form(code, verifier), proof(K1))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"
    assert "dpop-nonce" not in r.headers  # baseline does not use server nonces
    info = await introspect(kit, base, body["access_token"])  # S82: no proof needed at introspection
    assert info["active"] is True and info["token_type"] == "DPoP" and info["cnf"] == {"jkt": K1.thumbprint()}
    refresh = await introspect(kit, base, body["refresh_token"])
    assert "cnf" not in refresh  # a confidential client's refresh token is bound to the client (S87)


async def test_without_a_proof_the_token_is_a_bearer_token_without_cnf(kit: Kit, base: TestClient) -> None:
    code, verifier = await code_via_par(kit, base)
    r = await token(kit, base, code_form(code, verifier))
    assert r.json()["token_type"] == "Bearer"
    info = await introspect(kit, base, r.json()["access_token"])
    assert info["token_type"] == "Bearer" and "cnf" not in info


async def test_dpop_bound_access_tokens_client_must_send_a_proof(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", dpop_bound_access_tokens=True)
    assert client.metadata["dpop_bound_access_tokens"] is True
    code, verifier = await code_via_par(kit, client)
    r = await token(kit, client, code_form(code, verifier))
    assert_json_error(r, "invalid_request")
    assert _access_tokens(kit) == 0
    r = await token(kit, client, code_form(code, verifier), proof(K1))  # the code was not used up
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP"


def _typ_jwt() -> str:
    claims = {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())}
    jwk = {k: v for k, v in K1.public_dict().items() if k in ("kty", "crv", "x", "y")}
    return sign_raw({"typ": "JWT", "alg": "ES256", "jwk": jwk}, claims, K1, "ES256")


def _bad_proofs() -> dict[str, tuple[str, ...]]:
    return {
        "two DPoP headers": (proof(K1), proof(K1)),
        "htu of another endpoint": (proof(K1, PAR_URL),),
        "htm GET": (proof(K1, htm="GET"),),
        "typ JWT": (_typ_jwt(),),
        "iat an hour old": (proof(K1, iat=int(time.time()) - 3600),),
        "not a JWT": ("not-a-jwt",),
        "alg outside the advertised set": (proof(generate_jwk("ES384"), alg="ES384"),),
    }


@pytest.mark.parametrize("name", list(_bad_proofs()))
async def test_bad_proofs_are_invalid_dpop_proof_and_leave_the_code_usable(
    make: KitFactory, name: str
) -> None:
    """Under high (PS256/ES256/EdDSA only, server nonces on): a broken proof is invalid_dpop_proof, never
    use_dpop_nonce, and the code stays usable."""
    kit = await make(user="alice")  # a high flow: alice signs in with a second factor
    client = await kit.add_client(risk_tier="high")
    code, verifier = await code_via_par(kit, client)
    r = await token(kit, client, code_form(code, verifier), *_bad_proofs()[name])
    body = assert_json_error(r, "invalid_dpop_proof")
    assert "\"" not in body.get("error_description", "") and "127.0.0.1" not in body.get("error_description", "")
    assert _access_tokens(kit) == 0
    nonce = (await token(kit, client, code_form(code, verifier), proof(K1))).headers["dpop-nonce"]
    r = await token(kit, client, code_form(code, verifier), proof(K1, nonce=nonce))
    assert r.status_code == 200, r.text


async def test_a_replayed_proof_is_refused(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                  scope="profile")
    p = proof(K1)
    first = await token(kit, client, {"grant_type": "client_credentials"}, p)
    assert first.status_code == 200 and first.json()["token_type"] == "DPoP"
    assert_json_error(await token(kit, client, {"grant_type": "client_credentials"}, p), "invalid_dpop_proof")


async def test_concurrent_uses_of_one_proof_exactly_one_succeeds(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                  scope="profile")
    p = proof(K1)
    results = await asyncio.gather(*(token(kit, client, {"grant_type": "client_credentials"}, p)
                                     for _ in range(12)))
    assert sorted(r.status_code for r in results) == [200] + [400] * 11
    assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_dpop_proof"}


async def test_iat_ten_seconds_either_side_is_accepted(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                                  scope="profile")
    for delta in (10, -10):
        r = await token(kit, client, {"grant_type": "client_credentials"}, proof(K1, iat=kit.env.now() + delta))
        assert r.status_code == 200, r.text


# --- S85: server-provided nonces (on for high) ------------------------------------------------------------


async def test_nonce_flow_at_the_token_endpoint(make: KitFactory) -> None:
    kit = await make(user="alice")  # a high flow: alice signs in with a second factor
    client = await kit.add_client(risk_tier="high")
    code, verifier = await code_via_par(kit, client)
    r = await token(kit, client, code_form(code, verifier), proof(K1))
    assert_json_error(r, "use_dpop_nonce")
    nonces = r.headers.get_list("dpop-nonce")
    assert len(nonces) == 1 and len(nonces[0]) >= 22
    r = await token(kit, client, code_form(code, verifier), proof(K1, nonce="stale-or-foreign"))
    assert_json_error(r, "use_dpop_nonce")
    r = await token(kit, client, code_form(code, verifier), proof(K1, nonce=nonces[0]))  # code still usable
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP" and r.headers.get("dpop-nonce")
    assert "no-store" in r.headers["cache-control"]


async def test_nonce_at_par_and_binding_through_the_par_proof(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="high")
    ro, _ctx = client.request_object()
    r = await par(kit, client, {"request": ro, "client_id": client.client_id}, proof(K1, PAR_URL))
    assert_json_error(r, "use_dpop_nonce")
    nonce = r.headers["dpop-nonce"]
    # the request object was not used up by the nonce refusal: the retry may resend it
    r = await par(kit, client, {"request": ro, "client_id": client.client_id}, proof(K1, PAR_URL, nonce=nonce))
    assert r.status_code == 201, r.text
    assert r.headers.get("dpop-nonce")


async def test_a_nonce_expires_after_two_windows(make: KitFactory, clock: Any) -> None:
    kit = await make()
    client = await kit.add_client(risk_tier="high", grant_types=["client_credentials"], redirect_uris=[],
                                  scope="profile")
    r = await token(kit, client, {"grant_type": "client_credentials"}, proof(K1))
    nonce = r.headers["dpop-nonce"]
    clock.advance(2 * kit.env.settings.dpop_nonce_window)
    at = kit.env.now()
    r = await token(kit, client, {"grant_type": "client_credentials"}, proof(K1, nonce=nonce, iat=at), at=at)
    assert_json_error(r, "use_dpop_nonce")
    r = await token(kit, client, {"grant_type": "client_credentials"},
                    proof(K1, nonce=r.headers["dpop-nonce"], iat=at), at=at)
    assert r.status_code == 200, r.text


# --- S88: code binding (dpop_jkt, DPoP at PAR) -------------------------------------------------------------


async def test_par_proof_binds_the_code_to_its_key(kit: Kit, base: TestClient) -> None:
    code, verifier = await code_via_par(kit, base, proof(K1, PAR_URL))
    r = await token(kit, base, code_form(code, verifier), proof(K2))
    assert_json_error(r, "invalid_grant")
    assert_json_error(await token(kit, base, code_form(code, verifier)), "invalid_grant")
    assert _access_tokens(kit) == 0
    r = await token(kit, base, code_form(code, verifier), proof(K1))
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP"


async def test_dpop_jkt_in_the_par_body_and_in_the_request_object(kit: Kit, base: TestClient) -> None:
    for where in ("form", "claim"):
        extra = {"form": {"dpop_jkt": K1.thumbprint()}} if where == "form" else {}
        claims = {"dpop_jkt": K1.thumbprint()} if where == "claim" else {}
        code, verifier = await code_via_par(kit, base, **extra, **claims)
        assert_json_error(await token(kit, base, code_form(code, verifier), proof(K2)), "invalid_grant")
        assert (await token(kit, base, code_form(code, verifier), proof(K1))).status_code == 200


async def test_dpop_jkt_on_a_plain_authorization_request(kit: Kit) -> None:
    client = await public(kit)
    code, verifier = await code_by_value(kit, client, dpop_jkt=K1.thumbprint())
    assert_json_error(await token(kit, client, code_form(code, verifier), proof(K2)), "invalid_grant")
    assert (await token(kit, client, code_form(code, verifier), proof(K1))).status_code == 200


async def test_dpop_jkt_mismatching_the_par_proof_is_refused(kit: Kit, base: TestClient) -> None:
    ro, _ = base.request_object()
    r = await par(kit, base, {"request": ro, "client_id": base.client_id, "dpop_jkt": K2.thumbprint()},
                  proof(K1, PAR_URL))
    assert_json_error(r, "invalid_dpop_proof")


@pytest.mark.parametrize("value", ["short", "a" * 44, "a" * 42 + "!"])
async def test_a_malformed_dpop_jkt_is_invalid_request(kit: Kit, base: TestClient, value: str) -> None:
    ro, _ = base.request_object()
    r = await par(kit, base, {"request": ro, "client_id": base.client_id, "dpop_jkt": value})
    assert_json_error(r, "invalid_request")


async def test_a_bad_proof_at_par_is_invalid_dpop_proof(kit: Kit, base: TestClient) -> None:
    ro, _ = base.request_object()
    for bad in ((proof(K1, TOKEN_URL),), (proof(K1, PAR_URL), proof(K1, PAR_URL))):
        r = await par(kit, base, {"request": ro, "client_id": base.client_id}, *bad)
        assert_json_error(r, "invalid_dpop_proof")


# --- S87: refresh tokens -----------------------------------------------------------------------------------


async def test_public_client_refresh_token_is_bound_to_the_proof_key(kit: Kit) -> None:
    client = await public(kit)
    code, verifier = await code_by_value(kit, client)
    first = (await token(kit, client, code_form(code, verifier), proof(K1))).json()
    rt = first["refresh_token"]
    assert (await kit.store.tokens.get(token_hash(rt))).extra["cnf"] == {"jkt": K1.thumbprint()}  # type: ignore[union-attr]
    form = {"grant_type": "refresh_token", "refresh_token": rt}
    assert_json_error(await token(kit, client, form, proof(K2)), "invalid_grant")
    assert_json_error(await token(kit, client, form), "invalid_grant")
    r = await token(kit, client, form, proof(K1))  # the failed attempts did not use it up
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"


async def test_confidential_client_refresh_binds_the_new_key(kit: Kit, base: TestClient) -> None:
    code, verifier = await code_via_par(kit, base)
    first = (await token(kit, base, code_form(code, verifier), proof(K1))).json()
    r = await token(kit, base, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, proof(K2))
    assert r.status_code == 200, r.text
    info = await introspect(kit, base, r.json()["access_token"])
    assert info["cnf"] == {"jkt": K2.thumbprint()}


# --- S90: metadata -------------------------------------------------------------------------------------------


async def test_discovery_advertises_the_tier_algorithms(kit: Kit) -> None:
    meta = (await kit.http.get("/.well-known/oauth-authorization-server")).json()
    algs = meta["dpop_signing_alg_values_supported"]
    assert "ES256" in algs and "PS256" in algs and "EdDSA" in algs
    assert not [a for a in algs if a == "none" or a.startswith("HS")]


async def test_sender_constrained_tokens_is_a_known_control() -> None:
    assert Control("sender_constrained_tokens") is Control.SENDER_CONSTRAINED_TOKENS


# --- RFC 9449 §4.3 check 9 at the mTLS endpoint aliases (RFC 8705 §5) ---------------------------------------

ALIAS = "https://mtls.example.com"


@pytest.fixture
def aliased(kit: Kit) -> Kit:
    """The kit's server with ``mtls_issuer = ALIAS``: the same app answers on the alias host."""
    from jarmor.protocol.context import Endpoints

    kit.env.mtls, kit.env.mtls_aliases = True, Endpoints.for_issuer(ALIAS)
    return kit


async def test_a_proof_to_the_token_alias_names_the_alias(aliased: Kit, base: TestClient) -> None:
    """The proof's ``htu`` must be the URI the request was sent to: at the alias, the alias's token URL; a
    proof made for the main token endpoint is refused there (and one made for the alias at the main
    endpoint), without using up the code."""
    kit = aliased
    code, verifier = await code_via_par(kit, base)
    form = code_form(code, verifier)
    assert_json_error(await token(kit, base, form, proof(K1, TOKEN_URL), url=f"{ALIAS}/token"), "invalid_dpop_proof")
    assert_json_error(await token(kit, base, form, proof(K1, f"{ALIAS}/token")), "invalid_dpop_proof")
    assert _access_tokens(kit) == 0
    r = await token(kit, base, form, proof(K1, f"{ALIAS}/token"), url=f"{ALIAS}/token")
    assert r.status_code == 200, r.text
    assert (await introspect(kit, base, r.json()["access_token"]))["cnf"] == {"jkt": K1.thumbprint()}
    code, verifier = await code_via_par(kit, base)  # the main endpoint is unchanged beside the alias
    assert (await token(kit, base, code_form(code, verifier), proof(K2))).status_code == 200


async def test_a_proof_to_the_par_alias_names_the_alias(aliased: Kit, base: TestClient) -> None:
    kit = aliased
    ro, _ = base.request_object()
    form = {"request": ro, "client_id": base.client_id}
    assert_json_error(await par(kit, base, form, proof(K1, PAR_URL), url=f"{ALIAS}/par"), "invalid_dpop_proof")
    assert_json_error(await par(kit, base, form, proof(K1, f"{ALIAS}/par")), "invalid_dpop_proof")
    code, verifier = await code_via_par(kit, base, proof(K1, f"{ALIAS}/par"), par_url=f"{ALIAS}/par")
    assert_json_error(await token(kit, base, code_form(code, verifier), proof(K2)), "invalid_grant")
    assert (await token(kit, base, code_form(code, verifier), proof(K1))).status_code == 200  # bound at the alias


@pytest.mark.parametrize("host", ["mtls.example.com:8443", "user@mtls.example.com", "mtls.example.com/x", ""])
async def test_only_the_alias_host_and_port_select_the_alias(aliased: Kit, base: TestClient, host: str) -> None:
    """Another port, or a ``Host`` that is not a plain ``host[:port]``, is the main endpoint's request."""
    ro, _ = base.request_object()
    form = {"request": ro, "client_id": base.client_id, **base.auth_form()}
    r = await aliased.http.post("/par", data=form, headers={"DPoP": proof(K1, f"{ALIAS}/par"), "Host": host})
    assert_json_error(r, "invalid_dpop_proof")


async def test_without_aliases_the_alias_host_is_the_main_endpoint(kit: Kit, base: TestClient) -> None:
    ro, _ = base.request_object()
    r = await par(kit, base, {"request": ro, "client_id": base.client_id}, proof(K1, f"{ALIAS}/par"),
                  url=f"{ALIAS}/par")
    assert_json_error(r, "invalid_dpop_proof")
    r = await par(kit, base, {"request": ro, "client_id": base.client_id}, proof(K1, PAR_URL), url=f"{ALIAS}/par")
    assert r.status_code == 201, r.text


@pytest.mark.signs_in  # a high flow: alice signs in with a second factor
async def test_the_client_library_proves_the_alias_it_sends_to(aliased: Kit, tmp_path: Path) -> None:
    """``jarmor.client`` with a client certificate takes the advertised aliases for PAR and token (RFC 8705
    §5), and its proofs name them (``htu``), nonce retries included (high tier); jarmor accepts them there."""
    from jarmor.client import AsyncOAuthClient, ClientConfig
    from tests.certs import issue, make_ca
    from tests.kit import ISSUER, REDIRECT

    kit = aliased
    tc = await kit.add_client(risk_tier="high", dpop_bound_access_tokens=True)
    sent: list[tuple[str, str | None]] = []

    async def record(request: httpx.Request) -> None:
        if request.method == "POST" and "/interaction/" not in request.url.path:  # not the sign-in pages
            dpop = request.headers.get("dpop")
            sent.append((str(request.url), peek_claims(dpop)["htu"] if dpop else None))

    kit.http.event_hooks["request"].insert(0, record)
    config = ClientConfig(issuer=ISSUER, client_id=tc.client_id, redirect_uri=REDIRECT, signing_key=tc.key,
                          signing_alg="ES256", allow_insecure_http=True, dpop=True,
                          client_certificate=issue(make_ca(), "client").write(tmp_path, "client"))
    client = AsyncOAuthClient(config, http=kit.http)
    start = await client.start_authorization(scope="openid", response_mode="jwt")
    r = await kit.sign_in(await kit.http.get(start.url))
    done = await client.complete_authorization(r.headers["location"], expected_state=start.state)
    assert done.tokens.token_type == "DPoP"
    # PAR again after use_dpop_nonce; the token request then carries the nonce the alias sent
    assert [url for url, _ in sent] == [f"{ALIAS}/par", f"{ALIAS}/par", f"{ALIAS}/token"]
    assert all(htu == url for url, htu in sent)

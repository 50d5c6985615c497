"""``ResourceServer.authenticate``: every RFC 6750 §3.1 / RFC 9449 §7 / RFC 8705 §3 / RFC 9470 §3 refusal,
with its status and exact ``WWW-Authenticate`` value (checklist S89, C29)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jarmor.jose import generate_jwk
from jarmor.protocol.dpop import NonceService
from jarmor.resource import Requirement, ResourceError, step_up_error

from .certs import CERT_DER, CERT_PEM, CERT_THUMBPRINT, OTHER_CERT_DER
from .support import BEARER, DPOP, KEY, MTLS, NOW, OTHER_KEY, STEP, URL, proof, server

ALGS = 'algs="ES256 PS256 EdDSA Ed25519"'


async def _auth(rs: Any = None, **kw: Any) -> Any:
    rs = rs or server()
    kw.setdefault("method", "GET")
    kw.setdefault("url", URL)
    kw.setdefault("authorization", None)
    return await rs.authenticate(**kw)


async def _refused(rs: Any = None, **kw: Any) -> ResourceError:
    with pytest.raises(ResourceError) as info:
        await _auth(rs, **kw)
    return info.value


async def test_no_credentials_challenges_each_scheme_without_an_error_code() -> None:
    err = await _refused()
    assert (err.status, err.error) == (401, None)
    assert err.www_authenticate == f"Bearer, DPoP {ALGS}"
    assert "DPoP-Nonce" not in err.headers
    err = await _refused(server(realm="orders", require_sender_constrained=True))
    assert err.www_authenticate == f'DPoP realm="orders", {ALGS}'


async def test_an_unknown_scheme_counts_as_no_credentials() -> None:
    err = await _refused(authorization="Basic YTpi")
    assert (err.status, err.error) == (401, None)


@pytest.mark.parametrize("authorization", [["Bearer a", "Bearer b"], "Bearer", "Bearer a b", "DPoP ", "Bearer é"])
async def test_ambiguous_or_malformed_credentials_are_invalid_request(authorization: Any) -> None:
    err = await _refused(authorization=authorization)
    assert (err.status, err.error) == (400, "invalid_request")


async def test_an_unknown_token_is_invalid_token_in_the_scheme_used() -> None:
    err = await _refused(authorization="Bearer no-such-token")
    assert (err.status, err.error) == (401, "invalid_token")
    assert err.www_authenticate.startswith('Bearer error="invalid_token", error_description="')
    assert err.www_authenticate.endswith(f", DPoP {ALGS}")
    assert "no-such-token" not in err.www_authenticate


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_a_bearer_token_is_accepted_and_the_scheme_is_case_insensitive(scheme: str) -> None:
    principal = await _auth(authorization=f"{scheme} {BEARER}")
    assert (principal.subject, principal.client_id, principal.scopes) == ("alice", "app", {"orders:read"})
    assert principal.binding is None and principal.expires_at == NOW + 600


@pytest.mark.parametrize("with_proof", [False, True])
async def test_a_dpop_bound_token_presented_as_bearer_is_refused(with_proof: bool) -> None:
    """RFC 9449 §7.2: even with a valid proof next to it."""
    err = await _refused(authorization=f"Bearer {DPOP}", dpop=proof(DPOP) if with_proof else None)
    assert (err.status, err.error) == (401, "invalid_token")
    assert err.www_authenticate.startswith('Bearer error="invalid_token"')
    assert f"DPoP {ALGS}" in err.www_authenticate


@pytest.mark.parametrize("scheme", ["DPoP", "dpop"])
async def test_a_dpop_token_with_a_proof_from_its_key_is_accepted(scheme: str) -> None:
    principal = await _auth(authorization=f"{scheme} {DPOP}", dpop=proof(DPOP))
    assert principal.binding is not None and principal.binding.method == "dpop"
    assert principal.binding.thumbprint == KEY.thumbprint()


def _proof_cases() -> dict[str, Any]:
    return {
        "missing": None,
        "two headers": [proof(DPOP), proof(DPOP)],
        "not a jwt": "not-a-proof",
        "ath missing": proof(None),
        "ath of another token": proof("another-token"),
        "htm": proof(DPOP, method="POST"),
        "htu": proof(DPOP, url="https://api.example/other"),
        "htu other host": proof(DPOP, url="https://evil.example/orders"),
        "iat an hour old": proof(DPOP, iat=NOW - 3600),
        "iat in the future": proof(DPOP, iat=NOW + 60),
        "alg not allowed": proof(DPOP, key=generate_jwk("ES384"), alg="ES384"),
    }


@pytest.mark.parametrize("case", list(_proof_cases()))
async def test_each_bad_proof_is_invalid_dpop_proof(case: str) -> None:
    err = await _refused(authorization=f"DPoP {DPOP}", dpop=_proof_cases()[case])
    assert (err.status, err.error) == (401, "invalid_dpop_proof")
    assert err.www_authenticate.startswith('DPoP error="invalid_dpop_proof", error_description="')
    assert err.www_authenticate.endswith(ALGS)


async def test_htu_is_compared_without_query_and_after_normalisation() -> None:
    assert await _auth(authorization=f"DPoP {DPOP}", dpop=proof(DPOP, url="HTTPS://API.example:443/orders"),
                       url=URL + "?page=2")


async def test_a_proof_from_another_key_is_invalid_token() -> None:
    err = await _refused(authorization=f"DPoP {DPOP}", dpop=proof(DPOP, key=OTHER_KEY))
    assert (err.status, err.error) == (401, "invalid_token")
    assert err.www_authenticate.startswith('DPoP error="invalid_token"')


async def test_an_unbound_token_with_the_dpop_scheme_is_invalid_token() -> None:
    err = await _refused(authorization=f"DPoP {BEARER}", dpop=proof(BEARER))
    assert (err.status, err.error) == (401, "invalid_token")


async def test_a_replayed_proof_is_refused() -> None:
    rs = server()
    p = proof(DPOP)
    await _auth(rs, authorization=f"DPoP {DPOP}", dpop=p)
    err = await _refused(rs, authorization=f"DPoP {DPOP}", dpop=p)
    assert (err.status, err.error) == (401, "invalid_dpop_proof")


async def test_a_proof_replayed_concurrently_passes_exactly_once() -> None:
    rs = server()
    p = proof(DPOP)
    results = await asyncio.gather(*(_auth(rs, authorization=f"DPoP {DPOP}", dpop=p) for _ in range(25)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, ResourceError) and r.error == "invalid_dpop_proof" for r in results
               if isinstance(r, BaseException))


async def test_a_request_refused_before_the_binding_check_does_not_burn_its_proof() -> None:
    """The ``jti`` is marked only once proof, token and binding passed: a proof refused because the token
    was not (yet) valid can be retried, one that passed cannot be reused even if the route then refuses."""
    rs = server()
    verifier: Any = rs.verifier
    known = verifier.tokens.pop(DPOP)
    p = proof(DPOP)
    assert (await _refused(rs, authorization=f"DPoP {DPOP}", dpop=p)).error == "invalid_token"
    verifier.tokens[DPOP] = known
    err = await _refused(rs, authorization=f"DPoP {DPOP}", dpop=p, requirement=Requirement(scopes=["x"]))
    assert err.error == "insufficient_scope"
    assert (await _refused(rs, authorization=f"DPoP {DPOP}", dpop=p)).error == "invalid_dpop_proof"


async def test_resource_nonces_are_required_when_configured() -> None:
    nonces = NonceService([b"rs-secret" * 4], window=300, label="rs")
    rs = server(nonces=nonces)
    err = await _refused(rs, authorization=f"DPoP {DPOP}", dpop=proof(DPOP))
    assert (err.status, err.error) == (401, "use_dpop_nonce")
    assert err.www_authenticate.startswith('DPoP error="use_dpop_nonce"')
    fresh = err.headers["DPoP-Nonce"]
    assert fresh == nonces.issue(NOW)
    assert await _auth(rs, authorization=f"DPoP {DPOP}", dpop=proof(DPOP, nonce=fresh))
    foreign = NonceService([b"rs-secret" * 4], window=300, label="as").issue(NOW)
    err = await _refused(rs, authorization=f"DPoP {DPOP}", dpop=proof(DPOP, nonce=foreign))
    assert err.error == "use_dpop_nonce" and err.headers["DPoP-Nonce"] == fresh


@pytest.mark.parametrize("cert", [CERT_DER, CERT_PEM, CERT_PEM.encode()])
async def test_a_certificate_bound_token_with_its_certificate_is_accepted(cert: Any) -> None:
    principal = await _auth(authorization=f"Bearer {MTLS}", client_cert=cert)
    assert principal.binding is not None and principal.binding.method == "mtls"
    assert await _auth(authorization=f"Bearer {MTLS}", client_cert_thumbprint=CERT_THUMBPRINT)


@pytest.mark.parametrize("cert", [None, OTHER_CERT_DER])
async def test_a_certificate_bound_token_without_its_certificate_is_invalid_token(cert: Any) -> None:
    err = await _refused(authorization=f"Bearer {MTLS}", client_cert=cert)
    assert (err.status, err.error) == (401, "invalid_token")


async def test_a_resource_requiring_sender_constraint_refuses_bearer_tokens() -> None:
    rs = server(require_sender_constrained=True)
    err = await _refused(rs, authorization=f"Bearer {BEARER}")
    assert (err.status, err.error) == (401, "invalid_token")
    assert await _auth(rs, authorization=f"DPoP {DPOP}", dpop=proof(DPOP))
    assert await _auth(rs, authorization=f"Bearer {MTLS}", client_cert=CERT_DER)


async def test_missing_scopes_are_insufficient_scope_with_the_required_scopes() -> None:
    need = Requirement(scopes=("orders:read", "orders:write"))
    err = await _refused(authorization=f"Bearer {BEARER}", requirement=need)
    assert (err.status, err.error) == (403, "insufficient_scope")
    assert 'scope="orders:read orders:write"' in err.www_authenticate
    assert await _auth(authorization=f"Bearer {BEARER}", requirement=Requirement(scopes=["orders:read"]))
    err = await _refused(authorization=f"DPoP {DPOP}", dpop=proof(DPOP), requirement=need)
    assert err.www_authenticate.startswith('DPoP error="insufficient_scope"')


@pytest.mark.parametrize(("need", "challenge"), [
    (Requirement(acr_values=("urn:loa:3",)), 'acr_values="urn:loa:3"'),
    (Requirement(max_age=60), "max_age=60"),
    (Requirement(acr_values=("urn:loa:3", "urn:loa:4"), max_age=30), 'acr_values="urn:loa:3 urn:loa:4", max_age=30'),
])
async def test_step_up_is_insufficient_user_authentication(need: Requirement, challenge: str) -> None:
    """RFC 9470 §3: the token's acr is urn:loa:2, its auth_time 100 s ago."""
    err = await _refused(authorization=f"Bearer {STEP}", requirement=need)
    assert (err.status, err.error) == (401, "insufficient_user_authentication")
    assert err.www_authenticate.startswith('Bearer error="insufficient_user_authentication"')
    assert challenge in err.www_authenticate


async def test_step_up_met_and_tokens_without_auth_time() -> None:
    ok = Requirement(acr_values=("urn:loa:2", "urn:loa:3"), max_age=120)
    assert (await _auth(authorization=f"Bearer {STEP}", requirement=ok)).acr == "urn:loa:2"
    err = await _refused(authorization=f"Bearer {BEARER}", requirement=Requirement(max_age=3600))
    assert err.error == "insufficient_user_authentication"


def test_step_up_error_helper() -> None:
    err = step_up_error(["urn:loa:3"], 0, realm="api")
    assert err.status == 401
    assert err.www_authenticate == ('Bearer realm="api", error="insufficient_user_authentication", '
                                    'error_description="a stronger or more recent authentication is required", '
                                    f'acr_values="urn:loa:3", max_age=0, DPoP realm="api", {ALGS}')

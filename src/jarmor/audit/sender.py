"""The probe for control ``sender_constrained_tokens`` (RFC 9449 §5; FAPI 2.0 §5.3.2.1-6): redeem one fresh
code with a DPoP proof and another without, and compare (``probes.judge``'s table: enforced, optional, absent).

A proof is signed with a key made for the audit (ES256, or the first algorithm the server advertises that
jarmor can make a key for); one ``use_dpop_nonce`` answer is retried with the nonce (§8). A DPoP-bound answer
must say ``token_type: DPoP`` (§5). Certificate-bound tokens (RFC 8705) need a TLS client certificate, which
this probe does not present: a server that binds only to certificates shows as ``absent`` here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx

from jarmor.jose import generate_jwk, sign_jws_embedded_jwk

from .clients import AuditClient
from .flows import Outcome, Target, client_auth, revoke_tokens
from .model import Verdict

_ALGS = ("ES256", "EdDSA", "PS256", "ES384", "ES512")


def _redeem(t: Target, c: AuditClient, out: Outcome, proof: Callable[[str | None], str] | None) -> httpx.Response:
    token = t.endpoint("token_endpoint")
    assert token is not None and out.code is not None
    r: httpx.Response | None = None
    nonce: str | None = None
    for _ in range(2):
        form, headers, _assertion = client_auth(t, c)
        form.update({"grant_type": "authorization_code", "code": out.code, "redirect_uri": out.redirect_uri,
                     "code_verifier": out.verifier})
        if proof is not None:
            headers = {**headers, "DPoP": proof(nonce)}
        r = t.http.post_form(token, form, headers)
        nonce = r.headers.get("dpop-nonce")
        if proof is None or r.status_code != 400 or nonce is None or "use_dpop_nonce" not in r.text:
            break
    assert r is not None
    return r


def _prover(t: Target, token_url: str) -> Callable[[str | None], str] | None:
    offered = t.metadata.raw.get("dpop_signing_alg_values_supported")  # RFC 9449 §5.1
    alg = next((a for a in _ALGS if isinstance(offered, list) and a in offered), None)
    if alg is None:
        return None
    key = generate_jwk(alg)

    def proof(nonce: str | None) -> str:
        claims: dict[str, object] = {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": token_url,
                                     "iat": int(t.now())}
        if nonce is not None:
            claims["nonce"] = nonce
        return sign_jws_embedded_jwk(claims, key, alg, typ="dpop+jwt")

    return proof


def _bound(r: httpx.Response) -> bool:
    try:
        return r.status_code == 200 and str(r.json().get("token_type", "")).lower() == "dpop"
    except ValueError:
        return False


def sender_constrained_tokens(t: Target, c: AuditClient, fresh_code: Callable[[], Outcome]) -> tuple[Verdict, str]:
    """``fresh_code``: a completed authorization with a code not yet redeemed (raises when there is none)."""
    token = t.endpoint("token_endpoint")
    if token is None:
        return Verdict.NOT_RUN, "the token endpoint is not on the issuer's origin"
    prover = _prover(t, token)
    with_ = _redeem(t, c, fresh_code(), prover) if prover is not None else None
    without = _redeem(t, c, fresh_code(), None)
    revoke_tokens(t, c, *(r for r in (with_, without) if r is not None))
    if with_ is None or not _bound(with_):
        if without.status_code != 200:
            return Verdict.NOT_RUN, f"a token request without a DPoP proof was refused (HTTP {without.status_code})"
        state = ("DPoP is not advertised" if with_ is None
                 else f"a request with a DPoP proof got HTTP {with_.status_code} without token_type DPoP")
        return Verdict.ABSENT, f"{state}; a token request without a proof is accepted (a bearer token)"
    if without.status_code == 200:
        return Verdict.OPTIONAL, ("a token request with a DPoP proof gets a DPoP-bound token, and one without "
                                  "gets a bearer token")
    return Verdict.ENFORCED, ("a token request with a DPoP proof gets a DPoP-bound token; without one: "
                              f"HTTP {without.status_code}")

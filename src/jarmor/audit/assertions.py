"""Client-assertion probes at the token endpoint (RFC 7523 §3, FAPI 2.0 §5.3.2.1): ``private_key_jwt``
assertions a strict server must refuse.

How a refusal is told from an acceptance without obtaining anything: every probe sends
``grant_type=authorization_code`` with a code that does not exist. A server authenticates the client before it
looks at the grant (RFC 6749 §3.2.1, §5.2), so the *reference* — a valid assertion — is answered with a grant
error (``invalid_grant``), and an assertion that fails authentication with ``invalid_client`` / 401. A probe
answered exactly like the reference authenticated the client: the server accepted the broken assertion. No
token is ever issued, so the probes are safe against production; each costs one request (replay: the
reference is the first use).

The audience rule depends on the tier: RFC 7523 §3 and RFC 9126 §2 let a server accept its token endpoint URL
as ``aud``; FAPI 2.0 §5.3.2.1-8 (and draft-ietf-oauth-rfc7523bis, after the audience-injection attack
CVE-2025-27370) accept only the issuer, as a string. ``token_assertion_endpoint_aud`` is therefore judged
against the client's own tier (``Tier.issuer_only_audience``): accepted is ``violated`` for such a tier and
``optional`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from jarmor.client.pkce import new_jti
from jarmor.client.request_object import client_assertion_claims, sign_client_assertion
from jarmor.protocol.policy import DEFAULT_TIERS
from jarmor.protocol.vocabulary import CLIENT_ASSERTION_TYPE

from .flows import FORGED_AUD, error_of, forged_assertion
from .model import Verdict
from .probes import NotRun, Result, Session

UNKNOWN_CODE = "jarmor-audit-no-such-code"
LONG_LIFETIME = 24 * 3600


def _token_request(s: Session, assertion: str) -> httpx.Response:
    endpoint = s.t.endpoint("token_endpoint")
    if endpoint is None:
        raise NotRun("the token endpoint is not on the issuer's origin")
    form = {
        "grant_type": "authorization_code", "code": UNKNOWN_CODE, "redirect_uri": s.c.redirect_uri,
        "code_verifier": "jarmor-audit-" + "0" * 40, "client_id": s.c.client_id,
        "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion,
    }
    return s.t.http.post_form(endpoint, form)


def _signed(s: Session, changes: Mapping[str, Any] | None = None, drop: tuple[str, ...] = ()) -> str:
    assert s.c.signing_key is not None and s.c.signing_alg is not None
    claims = client_assertion_claims(client_id=s.c.client_id, issuer=s.t.issuer, now=s.t.now(), lifetime=60,
                                     jti=new_jti())
    claims.update(changes or {})
    for name in drop:
        claims.pop(name, None)
    return sign_client_assertion(claims, s.c.signing_key, s.c.signing_alg)


def _answer(r: httpx.Response) -> str:
    return f"HTTP {r.status_code} {error_of(r)}"


def _reference(s: Session) -> tuple[str, str]:
    """The valid assertion's answer (a grant error), sent once per client; returns (answer, assertion)."""
    if s.c.auth_method != "private_key_jwt" or not s.c.can_sign:
        raise NotRun("needs a private_key_jwt client with its private key")
    cached = s.extra.get("token_reference")
    if isinstance(cached, tuple):
        s.borrowed.extend(s.extra["token_reference_requests"])
        return cached[0], cached[1]
    assertion = _signed(s)
    mark = s.t.http.sent
    r = _token_request(s, assertion)
    s.extra["token_reference_requests"] = [f"(reference) {line}" for line in s.t.http.log[mark:]]
    answer = _answer(r)
    if r.status_code == 401 or error_of(r) == "invalid_client" or r.status_code == 200:
        raise NotRun(f"a valid client assertion with an unknown code was answered {answer}, not with a grant "
                     "error: the token endpoint's client authentication cannot be observed this way")
    s.extra["token_reference"] = (answer, assertion)
    return answer, assertion


def _judge(s: Session, assertion: str, what: str, *, accepted: Verdict = Verdict.VIOLATED) -> Result:
    reference, _ = _reference(s)
    r = _token_request(s, assertion)
    answer = _answer(r)
    if answer == reference or r.status_code == 200:
        return accepted, f"a client assertion with {what} authenticated the client ({answer}, as the valid one)"
    return Verdict.ENFORCED, f"a client assertion with {what} was refused ({answer}; the valid one: {reference})"


def token_assertion_replay(s: Session) -> Result:
    _, first = _reference(s)
    return _judge(s, first, "a jti already used (the same assertion again)")


def token_assertion_no_jti(s: Session) -> Result:
    _reference(s)
    return _judge(s, _signed(s, drop=("jti",)), "no jti")


def token_assertion_expired(s: Session) -> Result:
    _reference(s)
    now = s.t.now()
    return _judge(s, _signed(s, {"iat": now - 1200, "exp": now - 600}), "an exp 10 minutes in the past")


def token_assertion_long_lifetime(s: Session) -> Result:
    """RFC 7523 §3 lets the server refuse an ``exp`` unreasonably far ahead (it must remember the ``jti`` that
    long): accepted is ``optional``, not ``violated``."""
    _reference(s)
    now = s.t.now()
    return _judge(s, _signed(s, {"iat": now, "exp": now + LONG_LIFETIME}), "a lifetime of 24 hours",
                  accepted=Verdict.OPTIONAL)


def token_assertion_foreign_aud(s: Session) -> Result:
    _reference(s)
    return _judge(s, _signed(s, {"aud": FORGED_AUD}), f"another server's audience ({FORGED_AUD})")


def token_assertion_endpoint_aud(s: Session) -> Result:
    _reference(s)
    endpoint = s.t.endpoint("token_endpoint")
    assert endpoint is not None
    tier = DEFAULT_TIERS.get(s.c.tier or "")
    strict = tier is not None and tier.issuer_only_audience
    verdict, evidence = _judge(s, _signed(s, {"aud": endpoint}), "the token endpoint URL as aud",
                               accepted=Verdict.VIOLATED if strict else Verdict.OPTIONAL)
    rule = (f"tier {tier.name if tier else ''} accepts the issuer only (FAPI 2.0 §5.3.2.1-8)" if strict
            else "RFC 7523 §3 allows it; FAPI 2.0 tiers do not")
    return verdict, f"{evidence}; {rule}"


def token_assertion_wrong_iss(s: Session) -> Result:
    _reference(s)
    return _judge(s, _signed(s, {"iss": "jarmor-audit-other-client"}), "iss naming another client")


def token_assertion_wrong_sub(s: Session) -> Result:
    _reference(s)
    return _judge(s, _signed(s, {"sub": "jarmor-audit-other-client"}), "sub naming another client")


def token_assertion_alg_none(s: Session) -> Result:
    _reference(s)
    return _judge(s, forged_assertion(s.t, s.c, "none"), "alg none (unsigned)")


def token_assertion_hmac_public_key(s: Session) -> Result:
    _reference(s)
    return _judge(s, forged_assertion(s.t, s.c, "hmac_public_key"), "HS256 keyed with the client's public key")


TOKEN_ASSERTION_PROBES: tuple[tuple[str, Callable[[Session], Result]], ...] = (
    ("token_assertion_replay", token_assertion_replay),
    ("token_assertion_no_jti", token_assertion_no_jti),
    ("token_assertion_expired", token_assertion_expired),
    ("token_assertion_long_lifetime", token_assertion_long_lifetime),
    ("token_assertion_foreign_aud", token_assertion_foreign_aud),
    ("token_assertion_endpoint_aud", token_assertion_endpoint_aud),
    ("token_assertion_wrong_iss", token_assertion_wrong_iss),
    ("token_assertion_wrong_sub", token_assertion_wrong_sub),
    ("token_assertion_alg_none", token_assertion_alg_none),
    ("token_assertion_hmac_public_key", token_assertion_hmac_public_key),
)

"""One small function per check. Each returns ``(verdict, evidence)``; ``run_client`` records the requests
each one sent and attaches the references (``refs.REFS``).

Controls (jarmor's control names) compare the reference request *with* the control to the same request
*without* it (``judge``). Hygiene checks send one request that breaks a rule: refused is ``enforced``,
accepted is ``violated``. Checks that read a completed authorization (``iss``, JARM validity, state, code
reuse, PKCE at the token endpoint) run only when the server completes it by itself — the authorization
response redirects straight to the ``redirect_uri`` (an auto-approving test deployment), or reaches it through
the server's own interaction pages with ``follow_interactions`` (a scripted sign-in); otherwise they are
``not_run`` with the reason. References per check: ``refs.REFS``; explanations: ``docs/audit.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from jarmor.client.errors import ClientError, JarmValidationError
from jarmor.client.pkce import new_pkce
from jarmor.client.validation import check_audience, check_issuer, check_times
from jarmor.jose import SIGNING_ALGS, JoseError, peek_header, verify_jws

from .clients import AuditClient
from .flows import (
    FORGED_AUD,
    Outcome,
    Target,
    Variant,
    authorize,
    client_auth,
    client_modes,
    error_of,
    jarm_jws,
    jarm_supported,
    par_endpoint,
    redeem,
    reference,
    request_objects_supported,
    with_changes,
)
from .model import Finding, Verdict
from .refs import refs_for
from .tiers import tier_met
from .transport import AuditAborted, BudgetExhausted

Result = tuple[Verdict, str]
MAX_JARM_LIFETIME = 600  # JARM §2.1: "a short expiration"; 10 minutes is generous
JARM_SKEW = 30


@dataclass(slots=True)
class Session:
    """One client's audit: the reference request and its outcome, shared by the probes."""

    t: Target
    c: AuditClient
    ref: Variant
    ref_outcome: Outcome | None = None
    ref_requests: tuple[str, ...] = ()
    used_ref: bool = False
    completions: list[Outcome] = field(default_factory=list)

    def send(self, v: Variant) -> Outcome:
        out = authorize(self.t, self.c, v)
        if out.completed:
            self.completions.append(out)
        return out

    def reference_outcome(self) -> Outcome:
        """The reference request, sent once; a probe that reads it lists its requests too."""
        if self.ref_outcome is None:
            mark = self.t.http.sent
            self.ref_outcome = self.send(self.ref)
            self.ref_requests = tuple(f"(reference) {line}" for line in self.t.http.log[mark:])
            return self.ref_outcome
        self.used_ref = True
        return self.ref_outcome


class NotRun(Exception):
    """The probe cannot decide; the message is the reason."""


def judge(with_: Outcome | None, without: Outcome, advertised: bool, what: str) -> Result:
    """enforced: with accepted, without refused; optional: both accepted; absent: without accepted and the
    control unusable (refused or not offered)."""
    if with_ is None:
        if not without.accepted:
            raise NotRun(f"the request without {what} was refused ({without.error}) for another reason")
        if advertised:
            return Verdict.OPTIONAL, f"advertised, not used by this client; a request without {what} is accepted"
        return Verdict.ABSENT, f"not advertised; a request without {what} is accepted"
    if not with_.accepted:
        if without.accepted:
            return Verdict.ABSENT, f"a request with {what} is {with_.describe()}; without it: accepted"
        raise NotRun(f"requests with ({with_.error}) and without ({without.error}) {what} were both refused")
    if without.accepted:
        return Verdict.OPTIONAL, f"a request with {what} is accepted, and so is one without it"
    return Verdict.ENFORCED, f"a request with {what} is accepted; without it: {without.describe()}"


def breaks(out: Outcome, what: str) -> Result:
    """A hygiene request that breaks a rule: refused is enforced, accepted is violated."""
    if out.accepted:
        return Verdict.VIOLATED, f"the server accepted a request with {what}: {out.describe()}"
    return Verdict.ENFORCED, f"a request with {what} was {out.describe()}"


def _needs_ref(s: Session) -> Outcome:
    out = s.reference_outcome()
    if not out.accepted:
        raise NotRun(f"the reference request was {out.describe()}")
    return out


def _needs_signing(s: Session) -> None:
    if not s.c.can_sign:
        raise NotRun("needs a client with a private signing key")
    if not request_objects_supported(s.t):
        raise NotRun("the server advertises no request_object_signing_alg_values_supported")


# --- controls ---------------------------------------------------------------------------------------


def pkce_s256(s: Session) -> Result:
    with_ = _needs_ref(s)
    without = s.send(with_changes(s.ref, pkce=None))
    advertised = "S256" in s.t.metadata.supported("code_challenge_methods_supported")
    if not advertised and without.accepted:
        return Verdict.ABSENT, "S256 is not advertised and a request without code_challenge is accepted"
    return judge(with_, without, advertised, "a code_challenge (S256)")


def par(s: Session) -> Result:
    if par_endpoint(s.t) is None:
        without = _needs_ref(s)
        return Verdict.ABSENT, "no pushed_authorization_request_endpoint on the issuer's origin; front-channel " \
            f"requests are {without.describe()}"
    with_ = _needs_ref(s)
    without = s.send(with_changes(s.ref, par=False))
    return judge(with_, without, True, "PAR")


def signed_request_object(s: Session) -> Result:
    if not request_objects_supported(s.t):
        without = _needs_ref(s)
        return judge(None, without, False, "a signed request object")
    with_ = _needs_ref(s) if s.ref.signed else None
    without = s.send(with_changes(s.ref, signed=False, encrypt=False))
    if with_ is None and not without.accepted:
        raise NotRun(f"this client has no signing key and its unsigned request was {without.describe()}")
    return judge(with_, without, True, "a signed request object")


def jarm(s: Session) -> Result:
    what = "JARM (a .jwt response_mode)"
    modes = client_modes(s.t, s.c)
    if not jarm_supported(s.t.metadata) or (".jwt" not in s.ref.response_mode and s.ref.response_mode != "jwt"):
        # the server offers no JARM, or this client registered no JARM mode: the reference goes without it
        return judge(None, _needs_ref(s), jarm_supported(s.t.metadata), what)
    with_ = _needs_ref(s)
    # a plain mode the client registered, else query: a server that holds the client to JARM refuses it
    plain = [m for m in ("query", "fragment") if m in modes] or ["query"]
    without = s.send(with_changes(s.ref, response_mode=plain[0]))
    return judge(with_, without, True, what)


def private_key_jwt(s: Session) -> Result:
    advertised = "private_key_jwt" in s.t.metadata.supported("token_endpoint_auth_methods_supported")
    if s.c.auth_method != "private_key_jwt":
        return judge(None, _needs_ref(s), advertised, "private_key_jwt")
    if not s.ref.par:
        raise NotRun("judged at the PAR endpoint, which the server does not offer on its origin")
    with_ = _needs_ref(s)
    without = s.send(with_changes(s.ref, authenticate=False))
    return judge(with_, without, advertised, "private_key_jwt (client_assertion)")


def request_object_nbf(s: Session) -> Result:
    _needs_signing(s)
    with_ = _needs_ref(s)
    without = s.send(with_changes(s.ref, nbf=False))
    return judge(with_, without, True, "nbf in the request object")


def encrypted_request_object(s: Session) -> Result:
    _needs_signing(s)
    advertised = bool(s.t.metadata.supported("request_object_encryption_alg_values_supported"))
    if s.ref.encrypt:
        with_: Outcome | None = _needs_ref(s)
    else:
        _needs_ref(s)
        try:
            with_ = s.send(with_changes(s.ref, encrypt=True)) if advertised else None
        except AuditAborted as exc:
            if isinstance(exc, BudgetExhausted):
                raise
            with_ = None
    without = s.send(with_changes(s.ref, encrypt=False)) if s.ref.encrypt else s.reference_outcome()
    return judge(with_, without, advertised, "an encrypted request object")


def encrypted_jarm(s: Session) -> Result:
    advertised = bool(s.t.metadata.supported("authorization_encryption_alg_values_supported"))
    if s.c.decryption_keys is None:
        return judge(None, _needs_ref(s), advertised, "encrypted JARM")
    out = _needs_ref(s)
    if not out.completed or out.jarm is None:
        raise NotRun("needs a completed JARM authorization (an auto-approving deployment)")
    if out.jarm.count(".") != 4:
        return Verdict.ABSENT, "the client registered encryption but the JARM response is not a JWE"
    if out.jarm_claims is None:
        return Verdict.VIOLATED, "the JARM response is a JWE the client's keys cannot decrypt"
    return Verdict.ENFORCED, ("the JARM response is encrypted to the client's key; the client cannot ask for "
                              "an unencrypted one")


def https_redirect_uris(s: Session) -> Result:
    """Decided at registration (FAPI 1.0 Baseline §5.2.2-20): register a throwaway client like this one with
    an https URI and with an http non-loopback URI, then delete both (RFC 7592 §2.3)."""
    t, c = s.t, s.c
    endpoint = t.endpoint("registration_endpoint")
    if t.registration_token is None or endpoint is None:
        raise NotRun("decided at registration: give --registration-token (and a server with a registration "
                     "endpoint on its origin)")
    base: dict[str, object] = {"token_endpoint_auth_method": c.auth_method, "scope": c.scope,
                               **dict(c.registration)}
    outcomes: list[bool] = []
    errors: list[str] = []
    for uri in ("https://jarmor-audit.invalid/cb", "http://jarmor-audit.invalid/cb"):
        r = t.http.request("POST", endpoint, json_body={**base, "redirect_uris": [uri]},
                           headers={"Authorization": f"Bearer {t.registration_token}"})
        outcomes.append(r.status_code in (200, 201))
        errors.append(error_of(r))
        if r.status_code in (200, 201):
            delete_registration(t, r.json())
    https_ok, http_ok = outcomes
    if not https_ok:
        raise NotRun(f"registering a client like this one with an https redirect URI was refused ({errors[0]})")
    if http_ok:
        return Verdict.OPTIONAL, "a client registered like this one may use an http, non-loopback redirect URI"
    return Verdict.ENFORCED, ("registration refuses an http, non-loopback redirect URI for a client like this one "
                              f"({errors[1]})")


def authentication_assurance(s: Session) -> Result:
    """Whether the server holds this client to an authentication assurance level of its own (NIST SP 800-63B;
    OIDC Core §2 ``acr``): a reference flow the audit completes while the user proved no particular level (an
    auto-approving deployment, or the scripted sign-in) shows it does not; one refused for the sign-in's
    sake (``access_denied`` / ``unmet_authentication_requirements``) shows it does."""
    out = s.reference_outcome()
    if out.completed:
        return Verdict.OPTIONAL, "the reference authorization completed without any step-up of the sign-in"
    if out.error in ("access_denied", "unmet_authentication_requirements"):
        return Verdict.ENFORCED, f"the reference authorization was refused for its sign-in ({out.error})"
    raise NotRun(f"needs a completed authorization (an auto-approving deployment); it was {out.describe()}")


def delete_registration(t: Target, body: object) -> None:
    """RFC 7592 §2.3: delete what the audit created, if the management URI is on the issuer's origin."""
    if not isinstance(body, dict):
        return
    uri, token = body.get("registration_client_uri"), body.get("registration_access_token")
    registration = t.endpoint("registration_endpoint")
    if not isinstance(uri, str) or not isinstance(token, str) or registration is None:
        return
    if not uri.startswith(registration.rstrip("/") + "/") or not t.http.allow(uri):
        return
    t.http.request("DELETE", uri, headers={"Authorization": f"Bearer {token}"})


# --- hygiene: one broken request each ---------------------------------------------------------------


def redirect_uri_variants(uri: str) -> list[tuple[str, str]]:
    """URIs a prefix, pattern or normalising matcher would confuse with the registered one (RFC 9700 §4.1):
    an extra path segment, a trailing slash, an added query parameter."""
    parts = urlsplit(uri)
    path = parts.path or "/"
    variants = [
        ("an extra path segment", urlunsplit((parts.scheme, parts.netloc, path.rstrip("/") + "/jarmor-audit",
                                              parts.query, ""))),
        ("a trailing slash" if not path.endswith("/") else "the trailing slash removed",
         urlunsplit((parts.scheme, parts.netloc, path + "/" if not path.endswith("/") else path.rstrip("/") or "",
                     parts.query, ""))),
        ("an added query parameter",
         urlunsplit((parts.scheme, parts.netloc, path, f"{parts.query}&jarmor_audit=1".lstrip("&"), ""))),
    ]
    return [(what, v) for what, v in variants if v != uri]


def redirect_uri_exact_match(s: Session) -> Result:
    _needs_ref(s)
    refused: list[str] = []
    for what, changed in redirect_uri_variants(s.c.redirect_uri):
        out = s.send(with_changes(s.ref, redirect_uri=changed))
        if out.redirected_to_sent:
            return Verdict.VIOLATED, f"with {what}, the server redirected to the unregistered URI ({out.describe()})"
        if out.accepted:
            return Verdict.VIOLATED, f"a redirect URI with {what} was {out.describe()}"
        refused.append(f"{what} ({out.error})")
    return Verdict.ENFORCED, "redirect URIs differing from the registered one were refused: " + ", ".join(refused)


def pkce_downgrade(s: Session) -> Result:
    _needs_ref(s)
    return breaks(s.send(with_changes(s.ref, pkce="plain")), "code_challenge_method=plain")


def request_object_alg_none(s: Session) -> Result:
    if not request_objects_supported(s.t):
        raise NotRun("the server advertises no request objects")
    _needs_ref(s)
    return breaks(s.send(with_changes(s.ref, forge="none", encrypt=False)), "an unsigned (alg none) request object")


def request_object_hmac_public_key(s: Session) -> Result:
    _needs_signing(s)
    _needs_ref(s)
    return breaks(s.send(with_changes(s.ref, forge="hmac_public_key", encrypt=False)),
                  "a request object MACed (HS256) with the client's public key")


def request_object_signature(s: Session) -> Result:
    _needs_signing(s)
    _needs_ref(s)
    return breaks(s.send(with_changes(s.ref, forge="bad_signature")), "a request object with a wrong signature")


def request_object_expired(s: Session) -> Result:
    _needs_signing(s)
    _needs_ref(s)
    now = s.t.now()
    claims = {"iat": now - 1200, "nbf": now - 1200, "exp": now - 600}
    return breaks(s.send(with_changes(s.ref, claims=claims)), "a request object that expired 10 minutes ago")


def request_object_foreign_aud(s: Session) -> Result:
    _needs_signing(s)
    _needs_ref(s)
    return breaks(s.send(with_changes(s.ref, claims={"aud": FORGED_AUD})),
                  f"a request object for another audience ({FORGED_AUD})")


def request_object_replay(s: Session) -> Result:
    _needs_signing(s)
    first = _needs_ref(s)
    if first.request_object is None:
        raise NotRun("the reference request carries no request object")
    return breaks(s.send(with_changes(s.ref, request_object=first.request_object)),
                  "a request object (same jti) that was already used")


def client_assertion_replay(s: Session) -> Result:
    if s.c.auth_method != "private_key_jwt":
        raise NotRun("needs a private_key_jwt client")
    if not s.ref.par:
        raise NotRun("judged at the PAR endpoint, which the server does not offer on its origin")
    first = _needs_ref(s)
    if first.assertion is None:
        raise NotRun("the reference request carried no client assertion")
    return breaks(s.send(with_changes(s.ref, assertion=first.assertion)),
                  "a client assertion (same jti) that was already used")


def _assertion_forgery(s: Session, forge: str, what: str) -> Result:
    if s.c.auth_method != "private_key_jwt" or s.c.signing_key is None:
        raise NotRun("needs a private_key_jwt client")
    if not s.ref.par:
        raise NotRun("judged at the PAR endpoint, which the server does not offer on its origin")
    _needs_ref(s)
    return breaks(s.send(with_changes(s.ref, forge_assertion=forge)), what)


def client_assertion_alg_none(s: Session) -> Result:
    return _assertion_forgery(s, "none", "an unsigned (alg none) client assertion")


def client_assertion_hmac_public_key(s: Session) -> Result:
    return _assertion_forgery(s, "hmac_public_key", "a client assertion MACed (HS256) with the client's public key")


# --- checks on a completed authorization ------------------------------------------------------------


def _completed(s: Session) -> Outcome:
    out = _needs_ref(s)
    if not out.completed:
        raise NotRun("needs a completed authorization: the server asked for a user interaction (run against a "
                     "test deployment that auto-approves)")
    return out


def _verify_jarm(s: Session, out: Outcome) -> dict[str, object]:
    """JARM §2.4 with jarmor.client's checks: signature by a server key (no none/HS*), iss, aud, exp."""
    assert out.jarm is not None
    token = out.jarm
    if token.count(".") == 4:
        if out.jarm_claims is None:
            raise NotRun("the JARM response is encrypted and the client file has no decryption key")
        inner = jarm_jws(s.c, token)
        if inner is None:
            raise JarmValidationError("the JARM response cannot be decrypted", reason="decryption_failed")
        token = inner
    if s.t.jwks is None:
        raise JarmValidationError("the server's JWKS could not be read", reason="no_jwks")
    advertised = s.t.metadata.supported("authorization_signing_alg_values_supported")
    allowed = [a for a in advertised if a in SIGNING_ALGS] or list(SIGNING_ALGS)
    alg = peek_header(token).get("alg")
    if alg not in allowed:
        raise JarmValidationError(f"alg {str(alg)[:16]!r} is not an advertised asymmetric algorithm",
                                  reason="alg_not_allowed")
    claims = verify_jws(token, s.t.jwks, algorithms=allowed).claims
    check_issuer(claims, s.t.issuer, JarmValidationError)
    check_audience(claims, s.c.client_id, JarmValidationError, allow_azp=False)
    check_times(claims, now=s.t.now(), skew=JARM_SKEW, max_lifetime=MAX_JARM_LIFETIME, error=JarmValidationError)
    return claims


def jarm_response_validity(s: Session) -> Result:
    if not jarm_supported(s.t.metadata):
        raise NotRun("the server does not offer JARM")
    out = _completed(s)
    if out.jarm is None:
        raise NotRun("the reference request did not use JARM")
    try:
        _verify_jarm(s, out)
    except JarmValidationError as exc:
        return Verdict.VIOLATED, f"the JARM response fails JARM §2.4: {exc.reason}"
    except JoseError as exc:
        return Verdict.VIOLATED, f"the JARM response fails JARM §2.4: {exc.reason}"
    return Verdict.ENFORCED, "signature (server key, advertised algorithm), iss, aud and exp all valid"


PLAIN_MODES = ("query", "fragment", "form_post")
JARM_MODES = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")


def iss_in_response(s: Session) -> Result:
    """RFC 9207 §2 in every response mode the server advertises and the client registered: the plain ``iss``
    parameter, or the JARM response's ``iss`` claim. A mode the server refuses for this client is skipped."""
    _completed(s)
    modes = client_modes(s.t, s.c)
    checked: list[str] = []
    skipped: list[str] = []
    for mode in PLAIN_MODES + JARM_MODES:
        if mode not in modes:
            continue
        out = s.reference_outcome() if mode == s.ref.response_mode else s.send(
            with_changes(s.ref, response_mode=mode))
        if not out.completed:
            skipped.append(mode)
            continue
        if out.jarm is not None:
            if out.jarm_claims is None:
                skipped.append(mode)
                continue
            iss = out.jarm_claims.get("iss")
        else:
            iss = out.params.get("iss")
        if iss != s.t.issuer:
            return Verdict.VIOLATED, f"the {mode} response carries {'no' if iss is None else 'a wrong'} iss"
        checked.append(mode)
    if not checked:
        raise NotRun("no response mode completed with a readable response")
    note = f"; not completed for this client: {', '.join(skipped)}" if skipped else ""
    return Verdict.ENFORCED, f"iss equals the issuer in {', '.join(checked)}{note}"


def state_integrity(s: Session) -> Result:
    out = _completed(s)
    state = out.jarm_claims.get("state") if out.jarm_claims is not None else out.params.get("state")
    if out.jarm is not None and out.jarm_claims is None:
        raise NotRun("the JARM response is encrypted and the client file has no decryption key")
    if state != out.state:
        return Verdict.VIOLATED, "the response does not return the request's state unchanged"
    return Verdict.ENFORCED, "the response returns the 43-character state exactly"


def response_mode_confusion(s: Session) -> Result:
    out = _completed(s)
    mode = s.ref.response_mode
    if mode in JARM_MODES:
        if out.jarm is None or "code" in out.params:
            return Verdict.VIOLATED, f"response_mode={mode} was answered with plain parameters"
        return Verdict.ENFORCED, f"response_mode={mode} is answered with a JARM response only"
    if out.jarm is not None:
        return Verdict.VIOLATED, f"response_mode={mode} was answered with a JARM response"
    return Verdict.ENFORCED, f"response_mode={mode} is answered with plain parameters"


def _fresh_code(s: Session) -> Outcome:
    _completed(s)
    out = s.send(s.ref)
    if not out.completed or out.code is None:
        raise NotRun(f"could not obtain a readable authorization code ({out.describe()})")
    return out


def code_single_use(s: Session) -> Result:
    out = _fresh_code(s)
    assert out.code is not None
    first = redeem(s.t, s.c, out.code, out.verifier, out.redirect_uri)
    if first.status_code != 200:
        raise NotRun(f"redeeming the code failed (HTTP {first.status_code})")
    second = redeem(s.t, s.c, out.code, out.verifier, out.redirect_uri)
    revoke_tokens(s.t, s.c, first, second)
    if second.status_code == 200:
        return Verdict.VIOLATED, "the same authorization code was redeemed twice"
    return Verdict.ENFORCED, f"a second redemption of the code was refused (HTTP {second.status_code})"


def revoke_tokens(t: Target, c: AuditClient, *responses: httpx.Response) -> None:
    """RFC 7009: the audit revokes the tokens it obtained (never used) when the server offers revocation on
    its origin; it leaves nothing usable behind."""
    endpoint = t.endpoint("revocation_endpoint")
    if endpoint is None:
        return
    for response in responses:
        if response.status_code != 200:
            continue
        body = response.json()
        for hint in ("refresh_token", "access_token"):
            token = body.get(hint) if isinstance(body, dict) else None
            if isinstance(token, str):
                form, headers, _ = client_auth(t, c)
                t.http.post_form(endpoint, {**form, "token": token, "token_type_hint": hint}, headers)


def pkce_verifier_checked(s: Session) -> Result:
    out = _fresh_code(s)
    assert out.code is not None
    wrong = new_pkce().verifier
    r = redeem(s.t, s.c, out.code, wrong, out.redirect_uri)
    revoke_tokens(s.t, s.c, r)
    if r.status_code == 200:
        return Verdict.VIOLATED, "the code was redeemed with a code_verifier that does not match the challenge"
    return Verdict.ENFORCED, f"a wrong code_verifier was refused (HTTP {r.status_code})"


CONTROL_PROBES: tuple[tuple[str, Callable[[Session], Result]], ...] = (
    ("pkce_s256", pkce_s256),
    ("signed_request_object", signed_request_object),
    ("par", par),
    ("jarm", jarm),
    ("private_key_jwt", private_key_jwt),
    ("request_object_nbf", request_object_nbf),
    ("https_redirect_uris", https_redirect_uris),
    ("encrypted_request_object", encrypted_request_object),
    ("encrypted_jarm", encrypted_jarm),
    ("authentication_assurance", authentication_assurance),
)
HYGIENE_PROBES: tuple[tuple[str, Callable[[Session], Result]], ...] = (
    ("redirect_uri_exact_match", redirect_uri_exact_match),
    ("pkce_downgrade", pkce_downgrade),
    ("request_object_alg_none", request_object_alg_none),
    ("request_object_hmac_public_key", request_object_hmac_public_key),
    ("request_object_signature", request_object_signature),
    ("request_object_expired", request_object_expired),
    ("request_object_foreign_aud", request_object_foreign_aud),
    ("request_object_replay", request_object_replay),
    ("client_assertion_replay", client_assertion_replay),
    ("client_assertion_alg_none", client_assertion_alg_none),
    ("client_assertion_hmac_public_key", client_assertion_hmac_public_key),
    ("iss_in_response", iss_in_response),
    ("jarm_response_validity", jarm_response_validity),
    ("state_integrity", state_integrity),
    ("response_mode_confusion", response_mode_confusion),
    ("code_single_use", code_single_use),
    ("pkce_verifier_checked", pkce_verifier_checked),
)
PROBES = CONTROL_PROBES + HYGIENE_PROBES
CHECKS: tuple[str, ...] = tuple(name for name, _ in PROBES)


def run_client(
    t: Target, c: AuditClient, only: frozenset[str] | None = None
) -> tuple[list[Finding], str | None]:
    """Run every probe for one client; return its findings and the tier it meets."""
    s = Session(t=t, c=c, ref=reference(t, c))
    findings: list[Finding] = []
    exhausted: str | None = None
    for name, probe in PROBES:
        if only is not None and name not in only:
            continue
        mark = t.http.sent
        s.used_ref = False
        if exhausted is not None:
            verdict, evidence = Verdict.NOT_RUN, exhausted
        else:
            try:
                verdict, evidence = probe(s)
            except NotRun as exc:
                verdict, evidence = Verdict.NOT_RUN, str(exc)
            except BudgetExhausted as exc:
                exhausted = f"not run: {exc} (raise --max-requests)"
                verdict, evidence = Verdict.NOT_RUN, exhausted
            except AuditAborted as exc:
                verdict, evidence = Verdict.NOT_RUN, str(exc)
            except (ClientError, JoseError, ValueError, KeyError, TypeError) as exc:
                # a server answer the probe cannot read (malformed JSON, a key it cannot use ...)
                verdict, evidence = Verdict.NOT_RUN, f"probe failed on the server's answer ({type(exc).__name__})"
        findings.append(Finding(
            check=name, client_id=c.client_id, verdict=verdict, evidence=evidence,
            requests=(s.ref_requests if s.used_ref else ()) + tuple(t.http.log[mark:]), refs=refs_for(name),
        ))
    verdicts = {f.check: f.verdict for f in findings}
    return findings, tier_met(verdicts)


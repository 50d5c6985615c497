"""The audit's checks in order, and ``run_client``: every probe for one client, judged against its tier."""

from __future__ import annotations

from collections.abc import Callable

from jarmor.client.errors import ClientError
from jarmor.jose import JoseError

from .assertions import TOKEN_ASSERTION_PROBES
from .clients import AuditClient
from .extra import EXTRA_PROBES
from .flows import Target, reference
from .model import Finding, Verdict
from .probes import (
    NotRun,
    Result,
    Session,
    authentication_assurance,
    client_assertion_alg_none,
    client_assertion_hmac_public_key,
    client_assertion_replay,
    code_single_use,
    encrypted_jarm,
    encrypted_request_object,
    fresh_code,
    https_redirect_uris,
    iss_in_response,
    jarm,
    jarm_response_validity,
    par,
    pkce_downgrade,
    pkce_s256,
    pkce_verifier_checked,
    private_key_jwt,
    redirect_uri_exact_match,
    request_object_alg_none,
    request_object_expired,
    request_object_foreign_aud,
    request_object_hmac_public_key,
    request_object_nbf,
    request_object_replay,
    request_object_signature,
    response_mode_confusion,
    signed_request_object,
    state_integrity,
)
from .refs import refs_for
from .sender import sender_constrained_tokens
from .tiers import tier_met
from .transport import AuditAborted, BudgetExhausted

Probe = Callable[[Session], Result]
CONTROL_PROBES: tuple[tuple[str, Probe], ...] = (
    ("pkce_s256", pkce_s256),
    ("signed_request_object", signed_request_object),
    ("par", par),
    ("jarm", jarm),
    ("private_key_jwt", private_key_jwt),
    ("request_object_nbf", request_object_nbf),
    ("https_redirect_uris", https_redirect_uris),
    ("encrypted_request_object", encrypted_request_object),
    ("encrypted_jarm", encrypted_jarm),
    ("sender_constrained_tokens", lambda s: sender_constrained_tokens(s.t, s.c, lambda: fresh_code(s))),
    ("authentication_assurance", authentication_assurance),
)
HYGIENE_PROBES: tuple[tuple[str, Probe], ...] = (
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
PROBES = CONTROL_PROBES + HYGIENE_PROBES + TOKEN_ASSERTION_PROBES + EXTRA_PROBES
CHECKS: tuple[str, ...] = tuple(name for name, _ in PROBES)


def _run_one(s: Session, probe: Probe) -> Result:
    try:
        return probe(s)
    except NotRun as exc:
        return Verdict.NOT_RUN, str(exc)
    except BudgetExhausted:
        raise
    except AuditAborted as exc:
        return Verdict.NOT_RUN, str(exc)
    except (ClientError, JoseError, ValueError, KeyError, TypeError) as exc:
        # a server answer the probe cannot read (malformed JSON, a key it cannot use ...)
        return Verdict.NOT_RUN, f"probe failed on the server's answer ({type(exc).__name__})"


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
        s.borrowed.clear()
        if exhausted is not None:
            verdict, evidence = Verdict.NOT_RUN, exhausted
        else:
            try:
                verdict, evidence = _run_one(s, probe)
            except BudgetExhausted as exc:
                exhausted = f"not run: {exc} (raise --max-requests)"
                verdict, evidence = Verdict.NOT_RUN, exhausted
        shared = (s.ref_requests if s.used_ref else ()) + tuple(s.borrowed)
        findings.append(Finding(
            check=name, client_id=c.client_id, verdict=verdict, evidence=evidence,
            requests=shared + tuple(t.http.log[mark:]), refs=refs_for(name),
        ))
    verdicts = {f.check: f.verdict for f in findings}
    return findings, tier_met(verdicts)

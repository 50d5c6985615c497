"""The audit reports what a lax server does: every seeded weakness is ``violated``, every control it leaves
to the client ``optional``, and no tier is met (issue 16)."""

from __future__ import annotations

import httpx
import pytest

from jarmor.audit import AuditClient, Verdict, run_audit
from jarmor.audit.probes import CHECKS
from jarmor.jose import generate_jwk

from .lax_server import ISSUER, LaxServer

REDIRECT = "https://rp.example/cb"


def client() -> AuditClient:
    return AuditClient(client_id="c1", redirect_uri=REDIRECT, scope="openid", auth_method="private_key_jwt",
                       signing_key=generate_jwk("ES256"), signing_alg="ES256")


def audit(server: LaxServer, **kw: object) -> dict[str, tuple[Verdict, str]]:
    """Audit ``server`` with one client; the verdicts by check."""
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        report = run_audit(ISSUER, [client()], http_client=http, rate=1e6, **kw)  # type: ignore[arg-type]
    assert report.tiers_met == {"c1": None}
    return {f.check: (f.verdict, f.evidence) for f in report.findings}


VIOLATED = (
    "redirect_uri_exact_match", "pkce_downgrade", "request_object_alg_none", "request_object_hmac_public_key",
    "request_object_signature", "request_object_expired", "request_object_foreign_aud",
    "request_object_replay", "client_assertion_replay", "client_assertion_alg_none",
    "client_assertion_hmac_public_key", "iss_in_response", "jarm_response_validity",
    "code_single_use", "pkce_verifier_checked",
)


def test_seeded_weaknesses_are_violated() -> None:
    verdicts = audit(LaxServer())
    for name in VIOLATED:
        assert verdicts[name][0] is Verdict.VIOLATED, (name, verdicts[name])
    for name in ("pkce_s256", "par", "signed_request_object", "jarm", "private_key_jwt", "request_object_nbf"):
        assert verdicts[name][0] is Verdict.OPTIONAL, (name, verdicts[name])
    assert verdicts["encrypted_request_object"][0] is Verdict.ABSENT
    assert verdicts["https_redirect_uris"][0] is Verdict.NOT_RUN  # no --registration-token
    assert "aud" in verdicts["jarm_response_validity"][1]
    assert set(verdicts) == set(CHECKS)


def test_no_par_endpoint_is_absent() -> None:
    verdicts = audit(LaxServer(par=False))
    assert verdicts["par"][0] is Verdict.ABSENT
    assert verdicts["client_assertion_replay"][0] is Verdict.NOT_RUN


def test_endpoints_off_the_issuer_origin_are_never_contacted() -> None:
    """A token endpoint on another host (a discovery document steering the auditor) is not called: the
    checks that need it are not_run, and no request goes anywhere but the issuer's host."""
    server = LaxServer(token_host="elsewhere.example")
    verdicts = audit(server)
    assert set(server.hosts) == {"lax.example"}
    for name in ("code_single_use", "pkce_verifier_checked"):
        assert verdicts[name][0] is Verdict.NOT_RUN
        assert "origin" in verdicts[name][1]


def test_request_budget_is_a_hard_bound() -> None:
    server = LaxServer()
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        report = run_audit(ISSUER, [client()], http_client=http, rate=1e6, max_requests=6)
    assert report.requests_sent == 6 == len(server.hosts)
    assert any("budget" in f.evidence for f in report.findings if f.verdict is Verdict.NOT_RUN)


@pytest.mark.parametrize("rate", [2.0, 10.0])
def test_requests_are_paced_at_the_rate(rate: float) -> None:
    """With a frozen clock every request after the first waits exactly one interval."""
    waits: list[float] = []
    server = LaxServer()
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        report = run_audit(ISSUER, [client()], http_client=http, rate=rate, max_requests=12,
                           sleep=waits.append, clock=lambda: 1000.0, monotonic=lambda: 5.0)
    assert report.requests_sent == 12
    assert waits == [pytest.approx(1 / rate)] * 11


COMPLETED = ("iss_in_response", "jarm_response_validity", "state_integrity", "code_single_use",
             "pkce_verifier_checked")


def test_interactions_are_followed_only_when_asked_and_only_on_the_issuer_origin() -> None:
    """A sign-in page stops the audit (the completed-authorization checks are not_run) unless
    --follow-interactions; even then a page on another host is never requested."""
    server = LaxServer(interaction_host="lax.example")
    verdicts = audit(server)
    assert all(verdicts[name][0] is Verdict.NOT_RUN for name in COMPLETED)
    assert "completed authorization" in verdicts["code_single_use"][1]
    assert verdicts["pkce_downgrade"][0] is Verdict.VIOLATED  # accepted into the interaction
    verdicts = audit(LaxServer(interaction_host="lax.example"), follow_interactions=True)
    assert verdicts["state_integrity"][0] is Verdict.ENFORCED  # the lax server returns state intact
    assert all(verdicts[name][0] is Verdict.VIOLATED for name in COMPLETED if name != "state_integrity")
    elsewhere = LaxServer(interaction_host="login.elsewhere.example")
    verdicts = audit(elsewhere, follow_interactions=True)
    assert all(verdicts[name][0] is Verdict.NOT_RUN for name in COMPLETED)
    assert set(elsewhere.hosts) == {"lax.example"}

"""The audit reports what a lax server does: every seeded weakness is ``violated``, every control it leaves
to the client ``optional``, and no tier is met (issue 16)."""

from __future__ import annotations

import httpx
import pytest

from jarmor.audit import AuditClient, Verdict, run_audit
from jarmor.audit.suite import CHECKS
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
    "token_assertion_replay", "token_assertion_no_jti", "token_assertion_expired", "token_assertion_foreign_aud",
    "token_assertion_wrong_iss", "token_assertion_wrong_sub", "token_assertion_alg_none",
    "token_assertion_hmac_public_key",
)


def test_seeded_weaknesses_are_violated() -> None:
    verdicts = audit(LaxServer())
    for name in VIOLATED:
        assert verdicts[name][0] is Verdict.VIOLATED, (name, verdicts[name])
    for name in ("pkce_s256", "par", "signed_request_object", "jarm", "private_key_jwt", "request_object_nbf"):
        assert verdicts[name][0] is Verdict.OPTIONAL, (name, verdicts[name])
    assert verdicts["encrypted_request_object"][0] is Verdict.ABSENT
    assert verdicts["https_redirect_uris"][0] is Verdict.NOT_RUN  # no --registration-token
    # RFC 7523 allows the token endpoint as audience and a long lifetime: for a client without a FAPI tier,
    # accepting them is the server's choice
    assert verdicts["token_assertion_endpoint_aud"][0] is Verdict.OPTIONAL
    assert verdicts["token_assertion_long_lifetime"][0] is Verdict.OPTIONAL
    assert verdicts["request_object_zip"][0] is Verdict.NOT_RUN  # no encrypted request objects
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


def plain_client() -> AuditClient:
    return AuditClient(client_id="c1", redirect_uri=REDIRECT, scope="openid", auth_method="private_key_jwt",
                       signing_key=generate_jwk("ES256"), signing_alg="ES256", response_modes=("query",))


def run(server: LaxServer, c: AuditClient, **kw: object) -> dict[str, tuple[Verdict, str]]:
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        report = run_audit(ISSUER, [c], http_client=http, rate=1e6, **kw)  # type: ignore[arg-type]
    return {f.check: (f.verdict, f.evidence) for f in report.findings}


def test_mix_up_needs_iss_named_and_advertised() -> None:
    """RFC 9207: a plain response without iss lets a client of two issuers be mixed up; with iss (advertised)
    jarmor.client's check accepts it for this issuer and refuses it for the second one."""
    only = frozenset({"iss_mix_up"})
    verdict, evidence = run(LaxServer(), plain_client(), only=only)["iss_mix_up"]
    assert verdict is Verdict.VIOLATED and "no iss" in evidence
    verdict, evidence = run(LaxServer(iss=True), plain_client(), only=only,
                            mix_up_issuer="https://other.example")["iss_mix_up"]
    assert verdict is Verdict.ENFORCED and "https://other.example (iss_mismatch)" in evidence, evidence
    verdict, _ = run(LaxServer(), client(), only=only)["iss_mix_up"]
    assert verdict is Verdict.ENFORCED  # the JARM response's iss claim names the issuer


def test_compressed_request_objects() -> None:
    """Attack catalog A14: a server that accepts an encrypted request object and also one with zip: DEF is
    violated; one that refuses compression enforces it."""
    ro_client = AuditClient(client_id="c1", redirect_uri=REDIRECT, scope="openid", auth_method="private_key_jwt",
                            signing_key=generate_jwk("ES256"), signing_alg="ES256")
    only = frozenset({"request_object_zip"})
    lax = run(LaxServer(encryption=True, par=False), ro_client, only=only)["request_object_zip"]
    assert lax[0] is Verdict.VIOLATED, lax
    strict = run(LaxServer(encryption=True, zip_ok=False, par=False), ro_client, only=only)["request_object_zip"]
    assert strict[0] is Verdict.ENFORCED, strict


def test_the_endpoint_audience_is_judged_against_the_clients_tier() -> None:
    """FAPI 2.0 §5.3.2.1-8: for a client of a tier that accepts the issuer only, accepting the token endpoint
    URL as aud is violated (and that tier is not met); for others it is the server's choice."""
    from dataclasses import replace

    only = frozenset({"token_assertion_endpoint_aud"})
    high = run(LaxServer(), replace(client(), tier="high"), only=only)["token_assertion_endpoint_aud"]
    assert high[0] is Verdict.VIOLATED and "accepts the issuer only" in high[1], high
    baseline = run(LaxServer(), replace(client(), tier="baseline"), only=only)["token_assertion_endpoint_aud"]
    assert baseline[0] is Verdict.OPTIONAL, baseline


def test_a_login_script_signs_in_through_the_servers_form() -> None:
    """--login-script: the sign-in page's POST form is submitted with its hidden fields kept, the scripted
    fields filled and the named button pressed; the completed-authorization checks then run."""
    from jarmor.audit.signin import LoginScript

    server = LaxServer(interaction_host="lax.example", login_form=True)
    script = LoginScript(fields={"username": "alice", "password": "pw", "q": "never sent"})
    verdicts = run(server, client(), login_script=script)
    assert verdicts["state_integrity"][0] is Verdict.ENFORCED, verdicts["state_integrity"]
    assert verdicts["code_single_use"][0] is Verdict.VIOLATED
    assert server.logins and all(f == {"csrf": f["csrf"], "username": "alice", "password": "pw", "go": "in"}
                                 for f in server.logins)
    wrong = LaxServer(interaction_host="lax.example", login_form=True)
    verdicts = run(wrong, client(), login_script=LoginScript(fields={"username": "alice", "password": "no"},
                                                             max_forms=2))
    assert verdicts["state_integrity"][0] is Verdict.NOT_RUN  # the form came back: no completed authorization


def test_a_code_of_one_issuer_redeemed_at_the_other() -> None:
    """--mix-up-issuer with --mix-up-client: two tenants of one lax product sharing their codes — the second
    issuer redeems the first one's code (violated); with separate code stores it is refused (enforced)."""
    first, second = LaxServer(), LaxServer(issuer="https://other.example")

    def both(shared: bool) -> httpx.MockTransport:
        if shared:
            second.codes = first.codes
        return httpx.MockTransport(lambda r: (second if r.url.host == "other.example" else first)(r))

    only = frozenset({"mix_up_code_elsewhere"})
    for shared, expected in ((False, Verdict.ENFORCED), (True, Verdict.VIOLATED)):
        with httpx.Client(transport=both(shared)) as http:
            report = run_audit(ISSUER, [client()], http_client=http, rate=1e6, only=only,
                               mix_up_issuer="https://other.example", mix_up_client=client())
        (finding,) = report.findings
        assert finding.verdict is expected, finding
        assert any(line.startswith("POST https://other.example/token") for line in finding.requests)
    verdict, evidence = run(LaxServer(), client(), only=only)["mix_up_code_elsewhere"]
    assert verdict is Verdict.NOT_RUN and "--mix-up-client" in evidence

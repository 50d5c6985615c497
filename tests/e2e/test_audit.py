"""Issue 16 against a real ``jarmor serve --auto-approve``: ``jarmor audit`` reports, for a client of each
tier, ``enforced`` for every control the tier requires, ``optional`` for those it leaves to the client,
never ``violated``, and ``tier_met`` equal to the client's tier; ``--tier`` sets the exit code.

The audit judges the protocol hops and completes authorizations with ``--auto-approve`` or a
``--login-script`` that fills a password form; neither can give a TOTP code or a passkey, so these servers run
the built-in policy with the explicit loosening ``without_assurance`` (high and critical without
``authentication_assurance``, which the audit does not judge)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jarmor.jose import generate_jwk
from jarmor.protocol.policy import ALWAYS, DEFAULT_TIERS, Control

from .conftest import REGISTRATION_TOKEN, RunningServer, start_server, stop_server, without_assurance

pytestmark = pytest.mark.e2e

REDIRECT = "http://127.0.0.1:9999/cb"
TIERS = ("baseline", "elevated", "high", "critical")
# jarmor applies the https rule to every redirect URI at registration, whatever the tier (RFC 8252 §7.3).
ALWAYS_ENFORCED_BY_JARMOR = {Control.HTTPS_REDIRECT_URIS.value}
ASSURANCE = Control.AUTHENTICATION_ASSURANCE


def audit_met(tier: str) -> str:
    """The tier the audit can find met for a client of ``tier`` on these servers: the strictest built-in tier
    up to it that does not require authentication assurance — on a server that completes flows without a
    second factor the audit rightly finds ``authentication_assurance`` optional, so never high or critical."""
    fits = [t for t in DEFAULT_TIERS.values() if t.rank <= DEFAULT_TIERS[tier].rank and not t.requires(ASSURANCE)]
    return max(fits, key=lambda t: t.rank).name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("audit")
    running = start_server(workdir, *without_assurance(workdir))
    try:
        yield running
    finally:
        stop_server(running)


def client_file(server: RunningServer, tier: str, directory: Path) -> tuple[Path, dict[str, Any]]:
    """Register a client of ``tier`` and write the ``--client`` file: the registration response plus keys.

    The baseline client authenticates with a secret (so ``private_key_jwt`` is its choice) but has a key for
    request objects; the critical client registers request-object and JARM encryption, as its tier requires.
    """
    sig = generate_jwk("ES256")
    keys = [sig]
    meta: dict[str, Any] = {
        "risk_tier": tier,
        "redirect_uris": [REDIRECT],
        "scope": "openid profile",
        "token_endpoint_auth_method": "client_secret_basic" if tier == "baseline" else "private_key_jwt",
    }
    if tier == "critical":
        enc = generate_jwk("ECDH-ES")
        keys.append(enc)
        meta.update({
            "request_object_encryption_alg": "ECDH-ES",
            "request_object_encryption_enc": "A128GCM",
            "authorization_encrypted_response_alg": "ECDH-ES",
            "authorization_encrypted_response_enc": "A128GCM",
        })
    if DEFAULT_TIERS[tier].requires(Control.SENDER_CONSTRAINED_TOKENS):
        meta["dpop_bound_access_tokens"] = True  # the audit then redeems codes with DPoP proofs
    meta["jwks"] = {"keys": [k.public_dict() for k in keys]}
    registration = server.register(meta)
    data = {**registration, "jwks": {"keys": [k.private_dict() for k in keys]}, "scope": "openid profile",
            "registration": {"risk_tier": tier}}
    path = directory / f"{tier}.json"
    path.write_text(json.dumps(data))
    return path, registration


def audit(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", "audit", server.issuer, "--rate", "1000", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def clients(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    directory = tmp_path_factory.mktemp("audit-clients")
    return {tier: client_file(server, tier, directory) for tier in TIERS}


@pytest.fixture(scope="module")
def report(server: RunningServer, clients: dict[str, tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    args = [a for tier in TIERS for a in ("--client", str(clients[tier][0]))]
    done = audit(server, *args, "--registration-token", REGISTRATION_TOKEN, "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def findings_of(report: dict[str, Any], client_id: str) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in report["findings"] if f["client_id"] == client_id}


@pytest.mark.parametrize("tier", TIERS)
def test_findings_equal_what_the_tier_requires(
    report: dict[str, Any], clients: dict[str, tuple[Path, dict[str, Any]]], tier: str
) -> None:
    client_id = str(clients[tier][1]["client_id"])
    findings = findings_of(report, client_id)
    served = DEFAULT_TIERS[tier].controls - {ASSURANCE}  # the server's loosening (without_assurance)
    required = {c.value for c in served | ALWAYS} | ALWAYS_ENFORCED_BY_JARMOR
    for control in Control:
        expected = "enforced" if control.value in required else "optional"
        got = findings[control.value]
        assert got["verdict"] == expected, (control.value, got["evidence"], got["requests"])
        assert got["refs"], control.value
    for name, finding in findings.items():
        assert finding["verdict"] != "violated", (name, finding["evidence"])
        if finding["verdict"] == "not_run" and name != "mix_up_code_elsewhere":  # needs a second issuer
            # only the client-assertion checks of a client that authenticates with a secret cannot be probed
            assert tier == "baseline" and name.startswith(("client_assertion_", "token_assertion_")), (
                name, finding["evidence"])
    assert report["tiers_met"][client_id] == audit_met(tier)


def test_hygiene_checks_on_completed_flows_ran(
    report: dict[str, Any], clients: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    """The auto-approving server lets the checks that need a completed authorization run, and jarmor
    passes each of them (RFC 9207 iss, JARM §2.4, single-use codes, PKCE at the token endpoint)."""
    for tier in TIERS:
        findings = findings_of(report, str(clients[tier][1]["client_id"]))
        for name in ("iss_in_response", "jarm_response_validity", "state_integrity", "code_single_use",
                     "pkce_verifier_checked", "request_object_replay", "request_object_alg_none",
                     "request_object_hmac_public_key", "redirect_uri_exact_match", "pkce_downgrade",
                     "response_mode_confusion"):
            assert findings[name]["verdict"] == "enforced", (tier, name, findings[name]["evidence"])
            assert findings[name]["requests"], (tier, name)
    assert report["tier_met"] == audit_met("critical")
    for tier in TIERS:  # the tokens the code checks obtained are revoked (RFC 7009), never used
        requests = findings_of(report, str(clients[tier][1]["client_id"]))["code_single_use"]["requests"]
        assert any("/revoke [" in line and line.endswith("-> 200") for line in requests), requests
    # RFC 9207 iss was read in every mode each client may use: all seven for baseline, JARM modes above it
    baseline = findings_of(report, str(clients["baseline"][1]["client_id"]))["iss_in_response"]["evidence"]
    assert baseline.startswith("iss equals the issuer in query, fragment, form_post, jwt, query.jwt, "
                               "fragment.jwt, form_post.jwt"), baseline
    high = findings_of(report, str(clients["high"][1]["client_id"]))["iss_in_response"]["evidence"]
    # jarmor registers only the JARM modes for a tier that requires JARM: those are the ones checked
    assert high == "iss equals the issuer in jwt, query.jwt, fragment.jwt, form_post.jwt", high
    for tier in ("elevated", "high", "critical"):
        findings = findings_of(report, str(clients[tier][1]["client_id"]))
        for name in ("client_assertion_replay", "client_assertion_alg_none", "client_assertion_hmac_public_key"):
            assert findings[name]["verdict"] == "enforced", (tier, name, findings[name]["evidence"])


def test_report_carries_no_secrets(report: dict[str, Any], clients: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    """Every request is logged by method, URL without query and parameter names: no secret, code,
    assertion or request object reaches the report."""
    text = json.dumps(report)
    secret = str(clients["baseline"][1]["client_secret"])
    assert secret not in text
    assert "eyJ" not in text  # no JWS/JWE of any kind
    assert "code=" not in text and "?" not in text
    lines = [r for f in report["findings"] for r in f["requests"]]
    assert lines and all(line.split(" ", 2)[1].startswith(report["issuer"]) for line in lines
                         if not line.startswith("(reference)"))
    assert report["requests_sent"] <= 300


def test_tier_exit_codes(server: RunningServer, clients: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    token = ("--registration-token", REGISTRATION_TOKEN)
    met = audit(server, "--client", str(clients["high"][0]), *token, "--tier", "elevated")
    assert met.returncode == 0, met.stderr
    assert "tier met by" in met.stdout
    # every other control of high is enforced, but a server completing the flow without a second factor is
    # not high: the audit says so rather than vouch for the assurance it could not see
    unassured = audit(server, "--client", str(clients["high"][0]), *token, "--tier", "high")
    assert unassured.returncode == 1
    assert unassured.stderr.strip().splitlines() == ["jarmor: tier high not met (met: elevated; violated checks: 0)"]
    below = audit(server, "--client", str(clients["elevated"][0]), *token, "--tier", "high")
    assert below.returncode == 1
    # held to high, the elevated client's accepted token-endpoint audience is a violation too (FAPI 2.0
    # §5.3.2.1-8), though jarmor rightly accepts it for an elevated client
    assert below.stderr.strip().splitlines() == ["jarmor: tier high not met (met: elevated; violated checks: 1)"]


def test_junit_shows_each_check_as_a_test_case(
    server: RunningServer, clients: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    out = tmp_path / "audit.xml"
    done = audit(server, "--client", str(clients["baseline"][0]), "--tier", "elevated", "--format", "junit",
                 "-o", str(out))
    assert done.returncode == 1
    import xml.etree.ElementTree as ET

    suite = ET.parse(out).getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert "pkce_s256" in cases and "code_single_use" in cases
    failed = {name for name, c in cases.items() if c.find("failure") is not None}
    # the controls elevated requires that the baseline client leaves optional
    assert failed == {"signed_request_object", "jarm", "private_key_jwt"}
    assert cases["https_redirect_uris"].find("skipped") is not None  # no --registration-token


def test_self_registration_audits_and_cleans_up(server: RunningServer) -> None:
    """Without --client, the audit registers its own client at the asked tier and deletes it afterwards."""
    done = audit(server, "--registration-token", REGISTRATION_TOKEN, "--tier", "high", "--format", "json")
    assert done.returncode == 1, done.stderr  # high but for the assurance the audit cannot see (audit_met)
    body = json.loads(done.stdout)
    assert body["tier_met"] == audit_met("high")
    setup = body["setup_requests"]
    assert setup[-2].startswith("POST ") and "/register [" in setup[-2] and setup[-1].startswith("DELETE ")
    (client_id,) = body["client_ids"]
    import httpx

    r = httpx.get(f"{server.issuer}/register/{client_id}",
                  headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
    assert r.status_code in (401, 404), r.text


def test_a_client_registered_for_plain_modes_only(server: RunningServer, tmp_path: Path) -> None:
    """The reference request uses a mode the client registered: JARM is then the client's choice (optional),
    and iss is checked in the client's modes only."""
    key = generate_jwk("ES256")
    registration = server.register({
        "redirect_uris": [REDIRECT], "scope": "openid", "response_modes": ["query", "fragment"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.public_dict()]},
    })
    path = tmp_path / "plain.json"
    path.write_text(json.dumps({**registration, "jwk": key.private_dict()}))
    checks = [a for name in ("jarm", "iss_in_response", "pkce_s256", "response_mode_confusion")
              for a in ("--check", name)]
    done = audit(server, "--client", str(path), *checks, "--format", "json")
    assert done.returncode == 0, done.stderr
    findings = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    assert findings["jarm"]["verdict"] == "optional", findings["jarm"]
    assert findings["pkce_s256"]["verdict"] == "enforced"
    assert findings["iss_in_response"]["evidence"] == "iss equals the issuer in query, fragment"
    assert findings["response_mode_confusion"]["verdict"] == "enforced"


@pytest.mark.parametrize("tier", ("elevated", "high", "critical"))
def test_client_assertions_at_the_token_endpoint_are_refused(
    report: dict[str, Any], clients: dict[str, tuple[Path, dict[str, Any]]], tier: str
) -> None:
    """RFC 7523 §3 at the token endpoint: jarmor refuses every broken assertion; the token endpoint URL as
    aud follows the tier (FAPI 2.0 §5.3.2.1-8: the issuer only where the tier says so)."""
    findings = findings_of(report, str(clients[tier][1]["client_id"]))
    for name in ("token_assertion_replay", "token_assertion_no_jti", "token_assertion_expired",
                 "token_assertion_long_lifetime", "token_assertion_foreign_aud", "token_assertion_wrong_iss",
                 "token_assertion_wrong_sub", "token_assertion_alg_none", "token_assertion_hmac_public_key"):
        assert findings[name]["verdict"] == "enforced", (name, findings[name]["evidence"])
        assert any("/token [" in line for line in findings[name]["requests"]), findings[name]["requests"]
    endpoint_aud = findings["token_assertion_endpoint_aud"]
    expected = "enforced" if DEFAULT_TIERS[tier].issuer_only_audience else "optional"
    assert endpoint_aud["verdict"] == expected, endpoint_aud["evidence"]


@pytest.mark.parametrize("tier", TIERS)
def test_mix_up_and_compression_checks(
    report: dict[str, Any], clients: dict[str, tuple[Path, dict[str, Any]]], tier: str
) -> None:
    findings = findings_of(report, str(clients[tier][1]["client_id"]))
    assert findings["iss_mix_up"]["verdict"] == "enforced", findings["iss_mix_up"]["evidence"]
    assert "refuses it for https://jarmor-audit.invalid" in findings["iss_mix_up"]["evidence"]
    assert findings["request_object_zip"]["verdict"] == "enforced", findings["request_object_zip"]["evidence"]


def test_each_client_is_judged_against_its_own_tier(
    server: RunningServer, clients: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    """One audit, two clients, each with the tier of its file: the elevated client meets elevated, the same
    client held to critical does not — the exit code and the report say which client missed which tier."""
    files = []
    for tier, wanted in (("elevated", "elevated"), ("high", "critical")):
        path = tmp_path / f"{tier}-as-{wanted}.json"
        path.write_text(json.dumps({**json.loads(clients[tier][0].read_text()), "tier": wanted}))
        files += ["--client", str(path)]
    checks = [a for name in ("pkce_s256", "par", "signed_request_object", "jarm", "private_key_jwt",
                             "request_object_nbf", "encrypted_request_object", "encrypted_jarm")
              for a in ("--check", name)]
    done = audit(server, *files, *checks, "--format", "json")
    assert done.returncode == 1
    body = json.loads(done.stdout)
    high_id = str(clients["high"][1]["client_id"])
    assert body["tiers_required"] == {str(clients["elevated"][1]["client_id"]): "elevated", high_id: "critical"}
    assert list(body["clients_failing"]) == [high_id]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"jarmor: {high_id}: tier critical not met (met: ") and line.endswith("checks: 0)"), line


def test_a_scripted_sign_in_completes_flows_without_auto_approve(tmp_path: Path) -> None:
    """--login-script against jarmor without --auto-approve: the audit fills jarmor's sign-in form (CSRF
    field kept) and its consent form, so the checks on a completed authorization run."""
    running = start_server(tmp_path, *without_assurance(tmp_path), auto_approve=None)
    try:
        added = subprocess.run(
            [sys.executable, "-m", "jarmor.cli.main", "users", "add", "alice", "--password-stdin",
             "--database", running.database], input="alice's password\n", capture_output=True, text=True,
            timeout=60, check=False)
        assert added.returncode == 0, added.stderr
        path, _ = client_file(running, "high", tmp_path)
        script = tmp_path / "login.json"
        script.write_text(json.dumps({"fields": {"username": "alice", "password": "alice's password",
                                                 "decision": "approve"}}))
        checks = [a for name in ("iss_in_response", "iss_mix_up", "code_single_use", "state_integrity")
                  for a in ("--check", name)]
        without = audit(running, "--client", str(path), *checks, "--format", "json")
        assert {f["verdict"] for f in json.loads(without.stdout)["findings"]} == {"not_run"}
        done = audit(running, "--client", str(path), *checks, "--login-script", str(script), "--format", "json")
        assert done.returncode == 0, done.stderr
        findings = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
        for name, finding in findings.items():
            assert finding["verdict"] == "enforced", (name, finding["evidence"], finding["requests"])
        assert "alice's password" not in done.stdout
        # the sign-in form was posted with its hidden fields kept and the scripted ones filled (names only logged)
        posted = [line for f in findings.values() for line in f["requests"] if "username" in line]
        assert any(all(name in line for name in ("csrf_token", "method", "password")) for line in posted), posted
    finally:
        stop_server(running)


def test_a_code_is_refused_by_a_second_issuer(
    server: RunningServer, clients: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    """--mix-up-issuer with --mix-up-client: a second jarmor, where the same client is registered too, refuses
    a code the first one issued (mix_up_code_elsewhere), and the first one's response is refused for it by the
    client's RFC 9207 check (iss_mix_up)."""
    workdir = tmp_path / "second"
    workdir.mkdir()
    second = start_server(workdir, *without_assurance(workdir))
    try:
        path, _ = client_file(second, "high", tmp_path)
        checks = [a for name in ("mix_up_code_elsewhere", "iss_mix_up") for a in ("--check", name)]
        done = audit(server, "--client", str(clients["high"][0]), "--mix-up-issuer", second.issuer,
                     "--mix-up-client", str(path), *checks, "--format", "json")
        assert done.returncode == 0, done.stderr
        findings = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
        elsewhere = findings["mix_up_code_elsewhere"]
        assert elsewhere["verdict"] == "enforced", elsewhere
        assert any(line.startswith(f"POST {second.issuer}/token") for line in elsewhere["requests"])
        assert f"refuses it for {second.issuer}" in findings["iss_mix_up"]["evidence"]
    finally:
        stop_server(second)

"""Issue 16: ``jarmor audit`` against oidc-provider (the pinned Node peer), in a FAPI 2.0 configuration and a
deliberately lax one. The audit knows nothing of either: it reads discovery and probes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jarmor.jose import generate_jwk
from tests.e2e.conftest import free_port

from .peers import REDIRECT_URI, start_node

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("node")]


def run_audit(workdir: Path, profile: str, node: str, *extra: str, interactions: str = "scripted") -> dict[str, Any]:
    """Start oidc-provider with one ES256 private_key_jwt client and audit it; the report as JSON."""
    sig = generate_jwk("ES256", use="sig")
    meta: dict[str, Any] = {
        "client_id": f"audit-{profile}",
        "redirect_uris": [REDIRECT_URI],
        "response_types": ["code"],
        "grant_types": ["authorization_code"],
        "response_modes": ["jwt", "query.jwt", "query"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256",
        "request_object_signing_alg": "ES256",
        "jwks": {"keys": [sig.public_dict()]},
    }
    (workdir / "clients.json").write_text(json.dumps([meta]))
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    op = start_node(node, "op-oidc-provider-audit.mjs",
                    env={"PORT": str(port), "CLIENTS_FILE": str(workdir / "clients.json"), "PROFILE": profile,
                         "INTERACTIONS": interactions},
                    log=workdir / "op.log", ready_url=f"{issuer}/.well-known/openid-configuration")
    try:
        client_file = workdir / "client.json"
        client_file.write_text(json.dumps({**meta, "jwk": sig.private_dict(), "scope": "openid"}))
        (workdir / "login.json").write_text(json.dumps({"fields": {"login": "alice", "password": "any"}}))
        extra = tuple(str(workdir / "login.json") if a == "LOGIN_SCRIPT" else a for a in extra)
        done = subprocess.run(
            [sys.executable, "-m", "jarmor.cli.main", "audit", issuer, "--client", str(client_file),
             "--format", "json", "--rate", "1000", *extra],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))
    finally:
        op.stop()


@pytest.fixture(scope="module")
def reports(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    out = {}
    for name, profile, extra, interactions in (
        ("fapi", "fapi", (), "scripted"), ("lax", "lax", (), "scripted"),
        ("fapi-signed-in", "fapi", ("--follow-interactions",), "scripted"),
        ("fapi-dev", "fapi", ("--login-script", "LOGIN_SCRIPT"), "dev"),
    ):
        report = run_audit(tmp_path_factory.mktemp(f"audit-op-{name}"), profile, node, *extra,
                           interactions=interactions)
        out[name] = {f["check"]: f["verdict"] for f in report["findings"]} | {"tier_met": report["tier_met"]}
        out[name + ":evidence"] = {f["check"]: f["evidence"] for f in report["findings"]}
    yield out


def test_fapi_configuration(reports: dict[str, dict[str, str]]) -> None:
    fapi = reports["fapi"]
    for control in ("pkce_s256", "signed_request_object", "par", "private_key_jwt"):
        assert fapi[control] == "enforced", (control, fapi)
    for check in ("pkce_downgrade", "request_object_alg_none", "request_object_hmac_public_key",
                  "request_object_signature", "request_object_expired", "request_object_foreign_aud",
                  "redirect_uri_exact_match", "client_assertion_replay", "client_assertion_alg_none",
                  "client_assertion_hmac_public_key"):
        assert fapi[check] == "enforced", (check, fapi)
    # oidc-provider sends the user to its interaction: the auditor cannot complete the authorization
    for check in ("iss_in_response", "jarm_response_validity", "code_single_use", "pkce_verifier_checked"):
        assert fapi[check] == "not_run", (check, fapi)
    # A real finding: oidc-provider accepts the same request object (same jti) at PAR twice. RFC 9101 §10.2
    # leaves jti tracking to the server; jarmor marks every jti single use, so the audit reports it.
    assert [name for name, verdict in fapi.items() if verdict == "violated"] == ["request_object_replay"], fapi
    # JARM is offered but not required by the FAPI 2.0 profile: the strictest tier met is baseline
    assert fapi["jarm"] == "optional"
    assert fapi["tier_met"] == "baseline"


def test_lax_configuration_reports_its_weaknesses(reports: dict[str, dict[str, str]]) -> None:
    lax = reports["lax"]
    """Nothing required: the controls a FAPI deployment enforces are only optional, so no tier is met; the
    forgeries are still refused (oidc-provider cannot be made to accept them)."""
    for control in ("pkce_s256", "signed_request_object", "par", "jarm"):
        assert lax[control] == "optional", (control, lax)
    assert lax["tier_met"] is None
    for check in ("request_object_alg_none", "request_object_signature", "redirect_uri_exact_match"):
        assert lax[check] == "enforced", (check, lax)


def test_fapi_configuration_with_a_scripted_sign_in(reports: dict[str, dict[str, str]]) -> None:
    """--follow-interactions: the auditor follows oidc-provider's own redirects to its (scripted, auto-approving)
    interaction and back, so the checks on a completed authorization run against a real peer too."""
    signed_in, evidence = reports["fapi-signed-in"], reports["fapi-signed-in:evidence"]
    for check in ("iss_in_response", "jarm_response_validity", "state_integrity", "response_mode_confusion",
                  "code_single_use", "pkce_verifier_checked"):
        assert signed_in[check] == "enforced", (check, evidence[check])
    controls = ("pkce_s256", "signed_request_object", "par", "jarm", "private_key_jwt")
    assert {c: signed_in[c] for c in controls} == {c: reports["fapi"][c] for c in controls}



BROKEN_ASSERTIONS = ("token_assertion_replay", "token_assertion_no_jti", "token_assertion_expired",
                     "token_assertion_foreign_aud", "token_assertion_wrong_iss", "token_assertion_wrong_sub",
                     "token_assertion_alg_none", "token_assertion_hmac_public_key")


def test_client_assertions_at_the_token_endpoint(reports: dict[str, dict[str, str]]) -> None:
    """What oidc-provider 9 does with broken private_key_jwt assertions at its token endpoint (recorded):
    every forgery, replay, expiry and wrong iss/sub/aud is refused in both configurations; an assertion valid
    for 24 hours is accepted (RFC 7523 §3 leaves that limit to the server: optional); the token endpoint URL as
    aud is accepted by the lax deployment (RFC 7523) and refused by the FAPI 2.0 profile (§5.3.2.1-8)."""
    for name in ("fapi", "lax"):
        for check in BROKEN_ASSERTIONS:
            assert reports[name][check] == "enforced", (name, check, reports[name + ":evidence"][check])
        assert reports[name]["token_assertion_long_lifetime"] == "optional", name
    assert reports["fapi"]["token_assertion_endpoint_aud"] == "enforced"
    assert reports["lax"]["token_assertion_endpoint_aud"] == "optional"


def test_compression_and_mix_up(reports: dict[str, dict[str, str]]) -> None:
    """oidc-provider refuses a request object encrypted with zip: DEF (while it accepts the same one
    uncompressed); once an authorization completes, its JARM iss lets a client detect a mix-up."""
    for name in ("fapi", "lax"):
        assert reports[name]["request_object_zip"] == "enforced", reports[name + ":evidence"]["request_object_zip"]
    assert reports["fapi"]["iss_mix_up"] == "not_run"  # needs a completed authorization
    assert reports["fapi-signed-in"]["iss_mix_up"] == "enforced"


def test_devinteractions_with_a_login_script(reports: dict[str, dict[str, str]]) -> None:
    """--login-script against oidc-provider's own devInteractions pages (a login form, then a consent form):
    the audit signs in and consents like a browser, and the completed-authorization checks run."""
    dev, evidence = reports["fapi-dev"], reports["fapi-dev:evidence"]
    for check in ("iss_in_response", "iss_mix_up", "jarm_response_validity", "state_integrity",
                  "response_mode_confusion", "code_single_use", "pkce_verifier_checked"):
        assert dev[check] == "enforced", (check, evidence[check])
    assert [name for name, verdict in dev.items() if verdict == "violated"] == ["request_object_replay"], dev

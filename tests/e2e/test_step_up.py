"""Step-up for APIs end to end over real HTTP (issue 14, RFC 9470): a real ``jarmor serve`` whose
``elevated`` tier requires ``authentication_assurance`` at ``aal1``; a real API (Starlette under uvicorn,
``jarmor.resource``) whose route needs ``acr`` ``aal2``. A password sign-in gets a token the API refuses
with 401 ``insufficient_user_authentication``; ``jarmor.client`` raises ``StepUpRequired``; a new
authorization with its ``acr_values`` makes the server ask for the TOTP code; the new token is accepted.

The sign-in and consent pages are driven with httpx, as a browser would post their forms; the TOTP
authenticator is enrolled through the ``/account`` pages and its codes computed with pyotp.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from html import unescape
from urllib.parse import urljoin

import httpx
import pyotp
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from jarmor.client import ClientConfig, OAuthClient, StepUpRequired
from jarmor.jose import generate_jwk
from jarmor.resource import IntrospectionVerifier, Requirement, ResourceServer
from tests.interop.peers import REDIRECT_URI

from .conftest import RunningServer, free_port, start_server, stop_server
from .resource_api import Api, register_resource_server

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
CONFIG = """
[policy.tiers.elevated]
controls = ["pkce_s256", "signed_request_object", "jarm", "private_key_jwt", "authentication_assurance"]
authentication = { acr = "aal1" }
"""
ALGS = 'algs="ES256 PS256 EdDSA Ed25519"'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("step-up-e2e")
    (workdir / "jarmor.toml").write_text(CONFIG)
    running = start_server(workdir, "--config", str(workdir / "jarmor.toml"), auto_approve=None)
    try:
        done = subprocess.run([sys.executable, "-m", "jarmor.cli.main", "users", "add", "alice", "--password-stdin",
                               "--database", running.database], input=PASSWORD + "\n", text=True,
                              capture_output=True, timeout=120, cwd=workdir)
        assert done.returncode == 0, done.stderr
        yield running
    finally:
        stop_server(running)


def forms(page: httpx.Response) -> list[tuple[str, dict[str, str]]]:
    """``(absolute action, {field: value})`` of every form on ``page``."""
    out = []
    for attrs, body in re.findall(r"<form\b([^>]*)>(.*?)</form>", page.text, re.S):
        action = re.search(r'action="([^"]*)"', attrs)
        assert action, attrs
        values = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]*)" value="([^"]*)"', body)}
        out.append((urljoin(str(page.url), unescape(action.group(1))), values))
    return out


def form(page: httpx.Response, *, method: str | None = None, action_part: str = "") -> tuple[str, dict[str, str]]:
    """The form of sign-in ``method`` or whose action ends with a ``/path`` (else contains the text)."""
    for action, values in forms(page):
        if (method is None or values.get("method") == method) and (
            action.endswith(action_part) if action_part.startswith("/") else action_part in action
        ):
            return action, values
    raise AssertionError(f"no form (method={method}, action~{action_part}) on {page.text[:800]}")


def enrol_totp(issuer: str) -> pyotp.TOTP:
    """Sign in to ``/account`` with the password and add an authenticator app (RFC 6238)."""
    with httpx.Client(base_url=issuer, timeout=10) as http:
        page = http.get("/account/login")
        action, values = form(page, action_part="/account/login")
        signed_in = http.post(action, data={**values, "username": "alice", "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text[:500]
        overview = http.get("/account")
        action, values = form(overview, action_part="/account/totp/new")
        page = http.post(action, data=values)
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
        assert secret, page.text[:800]
        totp = pyotp.TOTP(secret.group(1))
        action, values = form(page, action_part="/account/totp/confirm")
        done = http.post(action, data={**values, "code": totp.now()})
        assert "Authenticator app added" in done.text, done.text[:800]
        return totp


def sign_in(url: str, totp: pyotp.TOTP | None) -> tuple[str, list[str]]:
    """Follow the front channel from the authorization URL to the redirect URI, posting the sign-in forms
    the server shows (password, then a TOTP code when asked) and approving the consent page."""
    steps: list[str] = []
    with httpx.Client(timeout=10) as http:
        r = http.get(url)
        for _ in range(12):
            if r.is_redirect:
                location = urljoin(str(r.url), r.headers["location"])
                if location.startswith(REDIRECT_URI):
                    return location, steps
                r = http.get(location)
                continue
            assert r.status_code == 200, r.text[:800]
            methods = {values.get("method") for _, values in forms(r)}
            if "totp" in methods:
                assert totp is not None, "a TOTP code was asked for"
                action, values = form(r, method="totp")
                r, step = http.post(action, data={**values, "code": totp.at(time.time() + 30)}), "totp"
            elif "password" in methods:
                action, values = form(r, method="password")
                r, step = http.post(action, data={**values, "username": "alice", "password": PASSWORD}), "password"
            else:
                action, values = form(r, action_part="consent")
                r, step = http.post(action, data={**values, "decision": "approve"}), "consent"
            steps.append(step)
    raise AssertionError(f"the front channel did not reach the redirect URI: {steps}")


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[Api]:
    """The API: ``GET /transfers`` needs the scope ``openid`` and an ``acr`` of ``aal2`` (RFC 9470); it checks
    tokens by introspection with its own, administrator-registered credentials."""
    creds = register_resource_server(server.database, server.workdir, "Payments API")
    rs = ResourceServer(verifier=IntrospectionVerifier(
        endpoint=f"{server.issuer}/introspect", client_id=creds["client_id"],
        client_secret=creds["client_secret"], issuer=server.issuer))

    async def transfers(request: Request) -> JSONResponse:
        p = request.state.principal
        return JSONResponse({"sub": p.subject, "acr": p.acr})

    with Api(rs, free_port(), "/transfers", transfers, Requirement(scopes=["openid"], acr_values=["aal2"])) as running:
        yield running


def test_step_up_round_trip(server: RunningServer, api: Api) -> None:
    totp = enrol_totp(server.issuer)
    key = generate_jwk("ES256")
    registration = server.register({
        "client_name": "Payments app", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]}, "authorization_signed_response_alg": "ES256",
        "id_token_signed_response_alg": "ES256", "request_object_signing_alg": "ES256",
        "token_endpoint_auth_signing_alg": "ES256", "grant_types": ["authorization_code"],
        "risk_tier": "elevated", "dpop_bound_access_tokens": True,
    })
    with OAuthClient(ClientConfig.from_registration(registration, issuer=server.issuer, signing_key=key,
                                                    redirect_uri=REDIRECT_URI, allow_insecure_http=True)) as rp:
        start = rp.start_authorization(scope="openid")
        callback, steps = sign_in(start.url, totp=None)
        assert steps == ["password", "consent"]
        first = rp.complete_authorization(callback, expected_state=start.state)
        assert (first.claims["acr"], first.claims["amr"]) == ("aal1", ["pwd"])

        with pytest.raises(StepUpRequired) as caught:
            rp.request("GET", f"{api.url}/transfers", first.tokens)
        err = caught.value
        assert (err.acr_values, err.max_age) == (("aal2",), None)
        raw = httpx.get(f"{api.url}/transfers", headers=dict(rp.core.resource_headers(
            "GET", f"{api.url}/transfers", first.tokens)))
        assert raw.status_code == 401
        assert raw.headers["www-authenticate"] == (
            'DPoP error="insufficient_user_authentication", '
            'error_description="a stronger authentication is required (acr)", acr_values="aal2", ' + ALGS)

        start = rp.start_authorization(scope="openid", **err.authorization_kwargs())
        callback, steps = sign_in(start.url, totp=totp)
        assert steps == ["password", "totp", "consent"]  # a new browser: the password, then the code asked for
        second = rp.complete_authorization(callback, expected_state=start.state)
        assert (second.claims["acr"], second.claims["amr"]) == ("aal2", ["pwd", "otp", "mfa"])

        ok = rp.request("GET", f"{api.url}/transfers", second.tokens)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"sub": "alice", "acr": "aal2"}

"""Every tier and every response mode over real HTTP against ``jarmor serve`` on loopback."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from jarmor.cli.demo_user import DemoUser
from jarmor.client import AuthorizationServerError, ClientConfig, JarmValidationError, OAuthClient
from jarmor.jose import generate_jwk
from jarmor.protocol.policy import DEFAULT_TIERS, Control

from .conftest import RunningServer, follow

pytestmark = pytest.mark.e2e

REDIRECT = "http://127.0.0.1:9999/cb"
JARM = ("jwt", "query.jwt", "fragment.jwt", "form_post.jwt")
PLAIN = ("query", "fragment", "form_post")
CASES = (
    [("baseline", m, False) for m in PLAIN + JARM]
    + [("elevated", m, False) for m in JARM]
    + [("elevated", m, True) for m in JARM]
    + [("high", m, True) for m in JARM]
)


def _client(server: RunningServer, tier: str, modes: tuple[str, ...]) -> tuple[OAuthClient, str]:
    key = generate_jwk("ES256")
    bound = DEFAULT_TIERS[tier].requires(Control.SENDER_CONSTRAINED_TOKENS)  # then DPoP (RFC 9449)
    body = server.register(
        {
            "risk_tier": tier,
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_dict()]},
            "authorization_signed_response_alg": "ES256",
            "id_token_signed_response_alg": "ES256",
            "response_modes": list(modes),
            "grant_types": ["authorization_code", "refresh_token"],
            **({"dpop_bound_access_tokens": True} if bound else {}),
        }
    )
    config = ClientConfig(
        issuer=server.issuer,
        client_id=str(body["client_id"]),
        redirect_uri=REDIRECT,
        signing_key=key,
        allow_insecure_http=True,
        dpop=bound,
    )
    return OAuthClient(config), str(body["client_id"])


@pytest.mark.parametrize(
    ("tier", "mode", "par"), CASES, ids=[f"{t}-{m}-{'par' if p else 'value'}" for t, m, p in CASES]
)
def test_flow(live_server: RunningServer, person: DemoUser, tier: str, mode: str, par: bool) -> None:
    """The built-in tiers as they are: alice signs in as each needs (high: a second factor)."""
    client, _ = _client(live_server, tier, PLAIN + JARM if tier == "baseline" else JARM)
    with client:
        start = client.start_authorization(scope="openid profile", response_mode=mode, use_par=par)  # type: ignore[arg-type]
        result = client.handle_callback(follow(person, start.url, tier), expected_state=start.state)
        tokens = client.exchange_code(result)
        claims = tokens.id_token_claims or {}
        assert claims["acr"] >= ("aal2" if tier == "high" else "aal1"), claims
        assert tokens.access_token and tokens.id_token and tokens.refresh_token
        assert tokens.token_type == ("DPoP" if client.config.dpop else "Bearer")
        refreshed = client.refresh(tokens.refresh_token)
        assert refreshed.access_token != tokens.access_token and refreshed.token_type == tokens.token_type


def test_tampered_jarm_is_rejected_end_to_end(live_server: RunningServer, person: DemoUser) -> None:
    client, _ = _client(live_server, "elevated", JARM)
    with client:
        start = client.start_authorization(scope="openid", response_mode="query.jwt", use_par=True)
        delivered = follow(person, start.url, "elevated")
        assert isinstance(delivered, str)
        params = dict(parse_qsl(urlsplit(delivered).query))
        header, payload, sig = params["response"].split(".")
        forged = f"{header}.{payload}.{sig[:-4]}AAAA"
        with pytest.raises(JarmValidationError):
            client.handle_callback({"response": forged}, expected_state=start.state)


def test_high_tier_refuses_request_without_par(live_server: RunningServer) -> None:
    client, _ = _client(live_server, "high", JARM)
    with client:
        start = client.start_authorization(scope="openid", response_mode="jwt", use_par=False)
        r = httpx.get(start.url)
        # the redirect URI is verified, so the error travels back inside a signed JARM response
        assert r.status_code == 303
        assert r.headers["location"].startswith(REDIRECT + "?response=")
        with pytest.raises(AuthorizationServerError) as info:
            client.handle_callback(r.headers["location"], expected_state=start.state)
        assert info.value.error == "invalid_request"
        assert "requires control par" in str(info.value.description)


def test_demo_against_live_server(live_server: RunningServer) -> None:
    """``jarmor demo --issuer`` completes flows in every tier and mode against the running server."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jarmor.cli.main",
            "demo",
            "--issuer",
            live_server.issuer,
            "--database",
            live_server.database,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=live_server.workdir,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "all flows completed" in out.stdout
    for mode in PLAIN + JARM:
        assert f"response_mode={mode} " in out.stdout
    assert out.stdout.count("result: access token issued") == 19  # 15 + the critical tier's four JARM modes
    # high and critical require sender-constrained tokens: their 8 flows are DPoP-bound, the others bearer
    assert out.stdout.count("token_type=DPoP") == 8 and out.stdout.count("token_type=Bearer") == 11
    assert "jarm: " in out.stdout and "signature ES256" in out.stdout


def test_demo_in_process() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", "demo"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "all flows completed" in out.stdout

"""openid-client 6 (certified RP) against ``jarmor serve``: PAR + signed (and encrypted) request objects with
private_key_jwt, JARM in every mode validated by openid-client (decrypted by it for ``critical`` clients),
code exchange with PKCE and ID token validation, refresh with rotation, client_credentials — all with DPoP
(openid-client's ``DPoP`` handle; ``high`` and ``critical`` require sender-constrained tokens, with server
nonces), the tokens bound to its key as jarmor's introspection shows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import RunningServer

from .conftest import JARM_MODES, PROFILES, PeerClient
from .peers import collect, run_node

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("node")]  # skip before starting servers


@pytest.fixture(scope="module")
def summaries(
    node: str,
    jarmor_server: RunningServer,
    jarmor_clients: dict[str, PeerClient],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[int, dict[str, Any], str]]:
    """One driver run per client profile, all at once: every JARM mode, then refresh and client_credentials."""
    keydir = tmp_path_factory.mktemp("interop-rp-keys")
    running = {}
    for name, client in jarmor_clients.items():
        keys = keydir / f"{name}.jwks.json"
        keys.touch(mode=0o600)
        keys.write_text(json.dumps(client.private_jwks))
        args = [  # --name=value: a generated client_id may start with "-"
            f"--issuer={jarmor_server.issuer}",
            f"--client-id={client.client_id}",
            f"--keys={keys}",
            f"--alg={client.profile.alg}",
            f"--modes={','.join(JARM_MODES)}",
            "--refresh",
            "--client-credentials",
            "--error-response",
            f"--dpop={client.profile.alg}",  # the tiers require sender-constrained tokens (issue 13)
        ]
        if client.profile.encryption:
            args.append(f"--encrypt={'/'.join(client.profile.encryption)}")
        running[name] = run_node(node, "rp-openid-client.mjs", *args)
    return {name: collect(proc) for name, proc in running.items()}


def _summary(summaries: dict[str, tuple[int, dict[str, Any], str]], profile: str) -> dict[str, Any]:
    status, summary, stderr = summaries[profile]
    assert summary, f"driver produced no summary (exit {status}):\n{stderr}"
    return summary


@pytest.mark.parametrize("mode", JARM_MODES)
@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_authorization_code_flow(
    summaries: dict[str, tuple[int, dict[str, Any], str]],
    jarmor_server: RunningServer,
    jarmor_clients: dict[str, PeerClient],
    profile: str,
    mode: str,
) -> None:
    client = jarmor_clients[profile]
    summary = _summary(summaries, profile)
    (flow,) = [f for f in summary["flows"] if f["response_mode"] == mode]
    assert flow["ok"], flow
    alg = client.profile.alg
    assert flow["request_object"]["jws"] == {
        "alg": alg,
        "kid": client.sig.kid,
        "typ": "oauth-authz-req+jwt",
        "parts": 3,
    }
    assert flow["par_request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert flow["delivered_via"] == {"fragment.jwt": "fragment", "form_post.jwt": "form_post"}.get(
        mode, "query"
    )
    jarm = flow["jarm"]
    assert jarm["signed"]["alg"] == alg and jarm["signed"]["parts"] == 3
    if client.profile.encryption:
        key_alg, enc = client.profile.encryption
        assert flow["request_object"]["jwe"]["alg"] == key_alg and flow["request_object"]["jwe"]["enc"] == enc
        assert jarm["decrypted_by_openid_client"] is True
        assert jarm["outer"]["parts"] == 5
        assert (jarm["outer"]["alg"], jarm["outer"]["enc"]) == client.profile.encryption
        assert client.enc is not None and jarm["outer"]["kid"] == client.enc.kid
    else:
        assert jarm["outer"] == jarm["signed"] and jarm["decrypted_by_openid_client"] is False
    assert flow["id_token"] == {
        "iss": jarmor_server.issuer,
        "aud": client.client_id,
        "sub": "alice",
        "nonce_ok": True,
    }
    assert flow["token_type"] == "dpop"  # openid-client normalises the case
    assert flow["has_refresh_token"] is True


@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_refresh_rotates(summaries: dict[str, tuple[int, dict[str, Any], str]], profile: str) -> None:
    refresh = _summary(summaries, profile)["refresh"]
    assert refresh["ok"] and refresh["rotated"] and refresh["token_type"] == "dpop", refresh


@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_client_credentials(summaries: dict[str, tuple[int, dict[str, Any], str]], profile: str) -> None:
    grant = _summary(summaries, profile)["client_credentials"]
    assert grant["ok"] and grant["token_type"] == "dpop", grant


@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_tokens_are_bound_to_the_dpop_key(summaries: dict[str, tuple[int, dict[str, Any], str]], profile: str) -> None:
    """RFC 9449 §6.2: introspection says ``token_type`` DPoP and ``cnf.jkt`` is openid-client's key."""
    summary = _summary(summaries, profile)
    info = summary["introspection"]
    assert info["ok"] and info["token_type"] == "DPoP", info
    assert info["cnf_jkt"] == summary["dpop_jkt"] and summary["dpop_jkt"], summary


@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_verified_error_response(
    summaries: dict[str, tuple[int, dict[str, Any], str]],
    jarmor_clients: dict[str, PeerClient],
    profile: str,
) -> None:
    """A request object by value for a client whose tier requires PAR: jarmor answers with a signed (for
    ``critical``: signed then encrypted) JARM error that openid-client verifies before surfacing it."""
    error = _summary(summaries, profile)["error_response"]
    assert error["ok"], error
    assert error["error"] == "invalid_request" and "requires control par" in error["error_description"]
    encryption = jarmor_clients[profile].profile.encryption
    assert error["jarm"]["parts"] == (5 if encryption else 3)
    if encryption:
        assert (error["jarm"]["alg"], error["jarm"]["enc"]) == encryption


@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_driver_exit_status(summaries: dict[str, tuple[int, dict[str, Any], str]], profile: str) -> None:
    status, summary, stderr = summaries[profile]
    assert status == 0 and summary["ok"] is True, stderr

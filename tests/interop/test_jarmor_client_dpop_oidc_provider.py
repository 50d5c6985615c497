"""jarmor's client library binding tokens with DPoP (RFC 9449) at oidc-provider 9 (``features.dPoP`` with
server nonces required): proofs at PAR (binding the code) and at the token endpoint for every grant, the
``use_dpop_nonce`` retry, ``token_type: DPoP``, and ``client.request`` at oidc-provider's userinfo endpoint
(a DPoP-protected resource, whose own nonce challenge is retried). The same token replayed as a bearer
token or with another key's proof is refused by oidc-provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jarmor.client import AsyncOAuthClient, ClientConfig, OAuthClient, TokenError
from jarmor.client.dpop import DPoP
from tests.e2e.conftest import free_port

from .conftest import Profile, client_metadata, new_keys
from .peers import REDIRECT_URI, NodeProcess, start_node, user_agent

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("node")]

# (client signing profile, DPoP proof algorithm)
DPOP_PROFILES = {
    "es256": (Profile("es256", "ES256"), "ES256"),
    "ps256": (Profile("ps256", "PS256"), "PS256"),
    "ed25519": (Profile("ed25519", "Ed25519"), "EdDSA"),
}


@dataclass(frozen=True)
class DpopProvider:
    issuer: str
    clients: dict[str, tuple[str, Any, str]]  # name -> (client_id, signing key, DPoP alg)
    process: NodeProcess


@pytest.fixture(scope="module")
def dpop_provider(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DpopProvider]:
    workdir = tmp_path_factory.mktemp("interop-oidc-provider-dpop")
    clients, metadata = {}, []
    for name, (profile, dpop_alg) in DPOP_PROFILES.items():
        sig, _ = new_keys(profile)
        client_id = f"jarmor-dpop-{name}"
        meta = client_metadata(profile, sig, None)
        meta |= {
            "client_id": client_id,
            "response_modes": ["jwt", "query.jwt"],
            "require_pushed_authorization_requests": True,
            "require_signed_request_object": True,
            "dpop_bound_access_tokens": True,
        }
        metadata.append(meta)
        clients[name] = (client_id, sig, dpop_alg)
    (workdir / "clients.json").write_text(json.dumps(metadata))
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    op = start_node(
        node,
        "op-oidc-provider-dpop.mjs",
        env={"PORT": str(port), "CLIENTS_FILE": str(workdir / "clients.json")},
        log=workdir / "oidc-provider.log",
        ready_url=f"{issuer}/.well-known/openid-configuration",
    )
    try:
        yield DpopProvider(issuer, clients, op)
    finally:
        op.stop()


@pytest.fixture(autouse=True)
def provider_log(dpop_provider: DpopProvider) -> Iterator[None]:
    start = dpop_provider.process.log.stat().st_size
    yield
    logged = dpop_provider.process.log.read_bytes()[start:]
    if logged:
        print("oidc-provider log:\n" + logged.decode(errors="replace"))


def config(op: DpopProvider, name: str, **settings: Any) -> ClientConfig:
    client_id, sig, dpop_alg = op.clients[name]
    registration = {
        "client_id": client_id,
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": sig.alg,
        "request_object_signing_alg": sig.alg,
        "authorization_signed_response_alg": sig.alg,
        "id_token_signed_response_alg": sig.alg,
        "dpop_bound_access_tokens": True,
    }
    settings.setdefault("dpop_signing_alg", dpop_alg)
    return ClientConfig.from_registration(
        registration, issuer=op.issuer, signing_key=sig, allow_insecure_http=True, **settings
    )


def userinfo_endpoint(rp: OAuthClient | AsyncOAuthClient) -> str:
    assert rp.metadata is not None
    return str(rp.metadata.raw["userinfo_endpoint"])


@pytest.mark.parametrize("name", list(DPOP_PROFILES))
def test_flow_refresh_and_resource_with_dpop(dpop_provider: DpopProvider, name: str) -> None:
    events: list[tuple[str, str]] = []
    trace = lambda hop, d: events.append((hop, str(d["summary"])))  # noqa: E731
    with OAuthClient(config(dpop_provider, name), trace=trace) as rp:
        assert rp.metadata is None
        start = rp.start_authorization(scope="openid offline_access", response_mode="jwt")
        login = rp.complete_authorization(user_agent(start.url), expected_state=start.state)
        tokens = login.tokens
        assert tokens.token_type == "DPoP" and login.subject == "alice"
        dpop = rp.core.dpop
        assert dpop is not None and login.flow.dpop_jkt == dpop.jkt
        # the PAR request was answered use_dpop_nonce once; the nonce was then reused at the token endpoint
        retries = [hop for hop, summary in events if "use_dpop_nonce" in summary]
        assert retries == ["par"], events
        assert rp.metadata is not None
        assert DPOP_PROFILES[name][1] in rp.metadata.supported("dpop_signing_alg_values_supported")

        userinfo = rp.request("GET", userinfo_endpoint(rp), tokens)
        assert userinfo.status_code == 200, userinfo.text
        assert userinfo.json()["sub"] == "alice"

        assert tokens.refresh_token
        refreshed = rp.refresh(tokens.refresh_token)
        assert refreshed.token_type == "DPoP" and refreshed.access_token != tokens.access_token
        again = rp.request("GET", userinfo_endpoint(rp), refreshed)
        assert again.status_code == 200 and again.json()["sub"] == "alice"

        credentials = rp.client_credentials()
        assert credentials.token_type == "DPoP"

        # RFC 9449 §7.2: the bound token is refused as a bearer token, and with another key's proof
        bearer = httpx.get(userinfo_endpoint(rp), headers={"authorization": f"Bearer {refreshed.access_token}"})
        assert bearer.status_code in (400, 401)
        thief = DPoP(None, "ES256")
        nonce = dpop.nonce_for(userinfo_endpoint(rp))
        if nonce is not None:
            thief.remember(userinfo_endpoint(rp), [nonce])
        proof = thief.proof("GET", userinfo_endpoint(rp), now=rp.core.now(), access_token=refreshed.access_token)
        stolen = httpx.get(
            userinfo_endpoint(rp),
            headers={"authorization": f"DPoP {refreshed.access_token}", "dpop": proof},
        )
        assert stolen.status_code == 401
        assert "dpop" in stolen.headers.get("www-authenticate", "").lower()


async def test_async_client_with_dpop(dpop_provider: DpopProvider) -> None:
    async with AsyncOAuthClient(config(dpop_provider, "es256")) as rp:
        start = await rp.start_authorization(scope="openid", response_mode="query.jwt")
        login = await rp.complete_authorization(user_agent(start.url), expected_state=start.state)
        assert login.tokens.token_type == "DPoP"
        userinfo = await rp.request("GET", userinfo_endpoint(rp), login.tokens)
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == "alice"


def test_a_given_dpop_key_is_used(dpop_provider: DpopProvider) -> None:
    from jarmor.jose import generate_jwk

    key = generate_jwk("ES256")
    with OAuthClient(config(dpop_provider, "es256", dpop_key=key.private_dict())) as rp:
        tokens = rp.client_credentials()
        assert rp.dpop_key is not None
    assert tokens.token_type == "DPoP" and rp.dpop_key.thumbprint() == key.thumbprint()


def test_dpop_bound_client_without_proof_is_refused(dpop_provider: DpopProvider) -> None:
    """``dpop_bound_access_tokens`` (RFC 9449 §5.2): oidc-provider refuses the client's token requests
    without a proof; the library does not silently drop DPoP for such a registration."""
    client_id, sig, _ = dpop_provider.clients["es256"]
    plain = ClientConfig(
        issuer=dpop_provider.issuer,
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        signing_key=sig,
        signing_alg="ES256",
        allow_insecure_http=True,
    )
    with OAuthClient(plain) as rp, pytest.raises(TokenError) as info:
        rp.client_credentials()
    assert info.value.status == 400

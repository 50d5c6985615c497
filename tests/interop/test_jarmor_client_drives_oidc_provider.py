"""jarmor's client library against oidc-provider 9 (FAPI 2.0 profile): PAR + signed (and encrypted) request
objects with private_key_jwt, JARM in every mode (encrypted for the encrypting clients), code exchange with
PKCE, ID token validation, refresh, client_credentials; plain modes with RFC 9207 ``iss``; verified errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast
from urllib.parse import parse_qsl, urlsplit

import pytest

from jarmor.client import AsyncOAuthClient, AuthorizationServerError, ClientConfig, OAuthClient, ResponseMode

from .conftest import JARM_MODES, PLAIN_MODES, PROFILES, OidcProvider, PeerClient
from .peers import REDIRECT_URI, user_agent

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("node")]  # skip before starting servers


@pytest.fixture(autouse=True)
def provider_log(oidc_provider: OidcProvider) -> Iterator[None]:
    """What oidc-provider logged during the test (its error events), shown when the test fails."""
    start = oidc_provider.process.log.stat().st_size
    yield
    logged = oidc_provider.process.log.read_bytes()[start:]
    if logged:
        print("oidc-provider log:\n" + logged.decode(errors="replace"))


def config(op: OidcProvider, client: PeerClient) -> ClientConfig:
    enc = client.profile.encryption
    return ClientConfig(
        issuer=op.issuer,
        client_id=client.client_id,
        redirect_uri=REDIRECT_URI,
        signing_key=client.sig,
        signing_alg=client.profile.alg,
        authorization_signed_response_alg=client.profile.alg,
        id_token_signed_response_alg=client.profile.alg,
        request_object_encryption_alg=enc[0] if enc else None,
        request_object_encryption_enc=enc[1] if enc else None,
        authorization_encrypted_response_alg=enc[0] if enc else None,
        authorization_encrypted_response_enc=enc[1] if enc else None,
        decryption_keys=client.decryption_keys,
        allow_insecure_http=True,
    )


@pytest.mark.parametrize("mode", JARM_MODES)
@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_authorization_code_flow(oidc_provider: OidcProvider, profile: str, mode: str) -> None:
    client = oidc_provider.clients[profile]
    events: list[tuple[str, dict[str, object]]] = []
    with OAuthClient(config(oidc_provider, client), trace=lambda hop, d: events.append((hop, dict(d)))) as rp:
        start = rp.start_authorization(
            scope="openid",
            response_mode=cast(ResponseMode, mode),
            encrypt_request=bool(client.profile.encryption),
        )
        assert start.request_uri and start.request_uri.startswith("urn:ietf:params:oauth:request_uri:")
        delivered = user_agent(start.url)
        if mode == "form_post.jwt":
            assert isinstance(delivered, dict) and set(delivered) == {"response"}
        result = rp.handle_callback(delivered, expected_state=start.state)
        assert result.claims["iss"] == oidc_provider.issuer and result.claims["aud"] == client.client_id
        tokens = rp.exchange_code(result)
    assert tokens.access_token and tokens.refresh_token
    assert tokens.id_token_claims is not None
    assert tokens.id_token_claims["sub"] == "alice" and tokens.id_token_claims["aud"] == client.client_id
    checks = [c for hop, d in events if hop == "jarm" for c in cast(tuple[str, ...], d["checks"])]
    assert f"signature {client.profile.alg} kid=op-{client.profile.alg.lower()} verified" in checks, checks
    if client.profile.encryption:
        assert f"decrypted {'/'.join(client.profile.encryption)}" in checks
        ro_checks = [
            c for hop, d in events if hop == "request_object" for c in cast(tuple[str, ...], d["checks"])
        ]
        assert any(c.startswith(f"encrypted {'/'.join(client.profile.encryption)}") for c in ro_checks)


@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
async def test_async_client_flow_and_refresh(oidc_provider: OidcProvider, profile: str) -> None:
    client = oidc_provider.clients[profile]
    async with AsyncOAuthClient(config(oidc_provider, client)) as rp:
        start = await rp.start_authorization(
            scope="openid", response_mode="jwt", encrypt_request=bool(client.profile.encryption)
        )
        result = await rp.handle_callback(user_agent(start.url), expected_state=start.state)
        tokens = await rp.exchange_code(result)
        assert tokens.refresh_token
        refreshed = await rp.refresh(tokens.refresh_token)
    assert refreshed.access_token != tokens.access_token
    if refreshed.id_token_claims is not None:
        assert refreshed.id_token_claims["sub"] == "alice"


@pytest.mark.parametrize("mode", PLAIN_MODES)
def test_plain_response_modes_carry_rfc9207_iss(oidc_provider: OidcProvider, mode: str) -> None:
    """oidc-provider advertises ``authorization_response_iss_parameter_supported``; jarmor requires and
    compares ``iss`` on plain responses (RFC 9207 §2.4)."""
    client = oidc_provider.clients["es256"]
    with OAuthClient(config(oidc_provider, client)) as rp:
        start = rp.start_authorization(scope="openid", response_mode=cast(ResponseMode, mode))
        delivered = user_agent(start.url)
        params = delivered if isinstance(delivered, dict) else dict(parse_qsl(urlsplit(delivered).query))
        assert params["iss"] == oidc_provider.issuer
        tokens = rp.exchange_code(rp.handle_callback(delivered, expected_state=start.state))
    assert tokens.id_token_claims is not None and tokens.id_token_claims["sub"] == "alice"


@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_verified_error_response(oidc_provider: OidcProvider, profile: str) -> None:
    """``prompt=none`` without a session: oidc-provider answers ``login_required`` inside a signed (and, for
    encrypting clients, encrypted) JARM response, which jarmor verifies before reporting it."""
    client = oidc_provider.clients[profile]
    with OAuthClient(config(oidc_provider, client)) as rp:
        start = rp.start_authorization(
            scope="openid",
            response_mode="query.jwt",
            encrypt_request=bool(client.profile.encryption),
            extra={"prompt": "none"},
        )
        delivered = user_agent(start.url)
        with pytest.raises(AuthorizationServerError) as info:
            rp.handle_callback(delivered, expected_state=start.state)
    assert info.value.error == "login_required" and info.value.state == start.state


@pytest.mark.parametrize("profile", [p.name for p in PROFILES])
def test_client_credentials(oidc_provider: OidcProvider, profile: str) -> None:
    with OAuthClient(config(oidc_provider, oidc_provider.clients[profile])) as rp:
        tokens = rp.client_credentials()
    assert tokens.access_token and tokens.token_type == "Bearer" and tokens.refresh_token is None

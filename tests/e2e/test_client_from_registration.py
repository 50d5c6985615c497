"""Issue 12.5 against a real ``jarmor serve``: a configuration taken from the registration response works in
every tier whatever the server's per-tier default algorithms are, and a client with only a secret works."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from jarmor.cli.demo_user import DemoUser
from jarmor.client import ClientConfig, JarmValidationError, OAuthClient, ResponseMode
from jarmor.jose import generate_jwk

from .conftest import RunningServer, enrol_person, follow, start_server, stop_server

pytestmark = pytest.mark.e2e

REDIRECT = "http://127.0.0.1:9999/cb"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("from-registration")
    running = start_server(workdir, auto_approve=None)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> DemoUser:
    return enrol_person(server)


def login(client: OAuthClient, alice: DemoUser, tier: str, mode: str = "jwt", use_par: bool = True) -> str | None:
    """alice signs in as the built-in ``tier`` needs (high: a second factor) and allows."""
    start = client.start_authorization(scope="openid profile", response_mode=cast(ResponseMode, mode), use_par=use_par)
    delivered = follow(alice, start.url, tier)
    return client.complete_authorization(delivered, expected_state=start.state).subject


@pytest.mark.parametrize("tier", ["baseline", "elevated", "high"])
def test_registered_defaults_are_taken_from_the_registration(server: RunningServer, alice: DemoUser, tier: str) -> None:
    """No algorithm in the metadata: the server picks its tier's default (RS256 or PS256); the library
    reads it from the registration response instead of assuming ES256."""
    key = generate_jwk("ES256")
    bound = tier == "high"  # the tier requires sender-constrained tokens: the client registers DPoP
    registration = server.register(
        {
            "risk_tier": tier,
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_dict()]},
            **({"dpop_bound_access_tokens": True} if bound else {}),
        }
    )
    assert registration["authorization_signed_response_alg"] != "ES256"
    config = ClientConfig.from_registration(
        registration, issuer=server.issuer, signing_key=key, allow_insecure_http=True
    )
    assert config.dpop is bound  # dpop_bound_access_tokens in the registration turns DPoP on
    with OAuthClient(config) as client:
        assert login(client, alice, tier) == "alice"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
@pytest.mark.parametrize(("mode", "use_par"), [("jwt", True), ("query", True), ("query.jwt", False)])
def test_a_client_with_only_a_secret(
    server: RunningServer, alice: DemoUser, method: str, mode: str, use_par: bool
) -> None:
    registration = server.register(
        {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": method, "scope": "openid profile"}
    )
    config = ClientConfig.from_registration(registration, issuer=server.issuer, allow_insecure_http=True)
    assert config.signing_key is None and config.client_secret
    with OAuthClient(config) as client:
        assert login(client, alice, "baseline", mode, use_par) == "alice"


def test_hand_built_configuration_names_the_setting(server: RunningServer, alice: DemoUser) -> None:
    """The failure of issue 12.5 ("alg 'PS256' is not the registered ES256") now says what to change."""
    key = generate_jwk("ES256")
    registration = server.register(
        {
            "risk_tier": "high",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_dict()]},
            "dpop_bound_access_tokens": True,
        }
    )
    config = ClientConfig(  # the library's ES256 default, while the server signs with PS256
        issuer=server.issuer,
        client_id=str(registration["client_id"]),
        redirect_uri=REDIRECT,
        signing_key=key,
        allow_insecure_http=True,
        dpop=True,
    )
    with OAuthClient(config) as client, pytest.raises(JarmValidationError) as info:
        login(client, alice, "high")
    assert info.value.reason == "alg_mismatch"
    assert "'PS256' is not the registered ES256" in str(info.value)
    assert "ClientConfig.authorization_signed_response_alg" in str(info.value)
    assert "ClientConfig.from_registration" in str(info.value)

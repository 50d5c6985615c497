"""Configuration validation, the flow store, and the synchronous client (same core, thin driver)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jarmor.client import (
    ClientConfig,
    ConfigurationError,
    FlowState,
    JarmValidationError,
    MemoryFlowStateStore,
    OAuthClient,
    TokenError,
)
from jarmor.jose import generate_jwk

from .fake_server import ISSUER, NOW, callback


@pytest.mark.parametrize(
    "overrides",
    [
        {"issuer": "http://as.example"},
        {"issuer": "https://as.example?x=1"},
        {"issuer": "https://as.example#f"},
        {"issuer": "as.example"},
        {"redirect_uri": "https://rp.example/cb#frag"},
        {"client_id": ""},
        {"signing_alg": "HS256"},
        {"signing_alg": "none"},
        {"signing_alg": "PS256"},  # the EC key cannot sign PS256
        {"authorization_signed_response_alg": "none"},
        {"authorization_signed_response_alg": "HS256"},
        {"id_token_signed_response_alg": "RS1"},
        {"authorization_encrypted_response_alg": "RSA1_5"},
        {"authorization_encrypted_response_alg": "RSA-OAEP-256"},  # no such decryption key
        {"authorization_encrypted_response_enc": "A128GCM"},  # _enc without _alg
        {"request_object_encryption_alg": "dir"},
        {"token_endpoint_auth_method": "client_secret_basic"},  # without a secret
        {"token_endpoint_auth_method": "none"},
        {"clock_skew": 3600},
        {"request_object_lifetime": 0},
        {"client_assertion_lifetime": 3600},
    ],
)
def test_config_rejects(make_config: Any, overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        make_config(**overrides)


def test_config_rejects_public_signing_key(make_config: Any, keys: Any) -> None:
    from .fake_server import public

    with pytest.raises(ConfigurationError):
        make_config(signing_key=public(keys.client_sig))


def test_config_loopback_http_only_when_allowed(make_config: Any) -> None:
    config = make_config(
        issuer="http://127.0.0.1:8000", redirect_uri="http://localhost/cb", allow_insecure_http=True
    )
    assert config.issuer == "http://127.0.0.1:8000"
    with pytest.raises(ConfigurationError):
        make_config(issuer="http://as.example", allow_insecure_http=True)


def test_secret_not_in_repr(make_config: Any) -> None:
    config = make_config(token_endpoint_auth_method="client_secret_post", client_secret="hunter2")
    assert "hunter2" not in repr(config)


def _flow(state: str, created: int = NOW) -> FlowState:
    return FlowState(
        issuer=ISSUER,
        client_id="c",
        state=state,
        nonce=None,
        code_verifier="v" * 43,
        redirect_uri="https://rp/cb",
        response_mode="jwt",
        scope="a",
        created_at=created,
        expires_at=created + 600,
    )


def test_memory_store_take_once_and_bounds() -> None:
    store = MemoryFlowStateStore(max_entries=3)
    store.put(_flow("s1"))
    assert store.take("s1", NOW) is not None
    assert store.take("s1", NOW) is None
    assert store.was_consumed("s1", NOW) and not store.was_consumed("s2", NOW)
    for i in range(5):
        store.put(_flow(f"x{i}"))
    assert len(store) == 3 and store.take("x0", NOW) is None
    store.put(_flow("late", created=NOW + 10_000))  # purges expired flows
    assert len(store) == 1
    assert "v" * 43 not in repr(_flow("s"))


# -- the synchronous client ------------------------------------------------------------------------------


def test_sync_full_flow(sync_client: OAuthClient, fake: Any) -> None:
    start = sync_client.start_authorization(scope="openid accounts", response_mode="form_post.jwt")
    ro = fake.authorize(start.url)
    result = sync_client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    tokens = sync_client.exchange_code(result)
    assert tokens.id_token_claims is not None and tokens.id_token_claims["nonce"] == ro["nonce"]
    assert sync_client.refresh(tokens.refresh_token or "").token_type == "Bearer"
    assert sync_client.client_credentials("a").scope == "a"
    assert sync_client.metadata is not None and sync_client.config.issuer == ISSUER


def test_sync_rejections(sync_client: OAuthClient, fake: Any, keys: Any) -> None:
    start = sync_client.start_authorization(scope="accounts")
    ro = fake.authorize(start.url)
    token = fake.sign(fake.response_claims(ro), key=keys.attacker)
    with pytest.raises(JarmValidationError) as info:
        sync_client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])
    assert info.value.reason == "bad_signature"
    assert fake.calls("/token") == 0
    # the forgery left the flow for the real response, which completes the login once (issue 19.5)
    genuine = callback(ro, {"response": fake.jarm(ro)})
    assert sync_client.handle_callback(genuine, expected_state=ro["state"]).code == ro["_code"]
    with pytest.raises(JarmValidationError) as info:
        sync_client.handle_callback(genuine, expected_state=ro["state"])
    assert info.value.reason == "state_replayed"
    fake.token_override = lambda form: httpx.Response(400, json={"error": "invalid_scope"})
    with pytest.raises(TokenError):
        sync_client.client_credentials("bad")


def test_sync_unknown_kid_refetch_survives_transport_error(sync_client: OAuthClient, fake: Any) -> None:
    """A transport failure during the rate-limited refetch is thrown into the core and keeps the cache."""
    start = sync_client.start_authorization(scope="a")
    ro = fake.authorize(start.url)
    sync_client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    original = fake.handle

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jwks":
            raise httpx.ReadTimeout("slow", request=request)
        return original(request)

    fake.handle = flaky
    start = sync_client.start_authorization(scope="a")
    ro = fake.authorize(start.url)
    token = fake.sign(fake.response_claims(ro), key=generate_jwk("ES256", kid="new"))
    with pytest.raises(JarmValidationError) as info:
        sync_client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])
    assert info.value.reason == "unknown_kid"


def test_owned_http_client_is_closed(make_config: Any) -> None:
    config: ClientConfig = make_config()
    client = OAuthClient(config)
    client.close()
    assert client._http.is_closed

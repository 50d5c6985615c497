"""Edge cases of the drivers and the core: context managers, streaming limits, argument checks, headers
that change what is verified, and re-discovery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from jarmor.client import (
    AsyncOAuthClient,
    AuthorizationResponseError,
    ConfigurationError,
    DiscoveryError,
    JarmValidationError,
    OAuthClient,
    TransportError,
)

from .fake_server import CLIENT_ID, ISSUER, REDIRECT_URI, callback, es256_sign


async def test_async_context_manager_closes_owned_client(make_config: Any) -> None:
    async with AsyncOAuthClient(make_config()) as client:
        assert client.config.client_id == CLIENT_ID and client.metadata is None
    assert client._http.is_closed


async def test_async_does_not_close_borrowed_client(make_config: Any) -> None:
    http = httpx.AsyncClient()
    async with AsyncOAuthClient(make_config(), http=http):
        pass
    assert not http.is_closed
    await http.aclose()


class _AsyncChunks(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 4096


class _SyncChunks(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 4096


async def test_streamed_body_without_length_is_capped_async(client: AsyncOAuthClient, fake: Any) -> None:
    fake.handle = lambda request: httpx.Response(200, stream=_AsyncChunks())
    with pytest.raises(TransportError) as info:
        await client.discover()
    assert info.value.reason == "response_too_large"


def test_streamed_body_without_length_is_capped_sync(sync_client: OAuthClient, fake: Any) -> None:
    fake.handle = lambda request: httpx.Response(200, stream=_SyncChunks())
    with pytest.raises(TransportError) as info:
        sync_client.discover()
    assert info.value.reason == "response_too_large"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scope": "a", "response_mode": "jwt.query"},
        {"scope": 'a"b'},
        {"scope": "a\nb"},
        {"scope": "a", "extra": {"": "x"}},
    ],
)
async def test_start_argument_checks(client: AsyncOAuthClient, fake: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        await client.start_authorization(**kwargs)
    assert fake.requests == []


async def test_extra_none_values_are_dropped(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, extra={"login_hint": None, "prompt": "login"})
    assert "login_hint" not in ro and ro["prompt"] == "login"


async def test_no_server_encryption_key(make_client: Any, make_config: Any, fake: Any) -> None:
    client = make_client(make_config(request_object_encryption_alg="RSA-OAEP-256"))
    fake.published = [fake.sig_key]
    with pytest.raises(DiscoveryError) as info:
        await client.start_authorization(scope="a", encrypt_request=True)
    assert info.value.reason == "no_encryption_key"
    assert fake.calls("/par") == 0


async def test_result_of_another_client_is_not_redeemed(
    make_client: Any, make_config: Any, fake: Any, begin: Any
) -> None:
    client_a = make_client()
    client_b = make_client(make_config(client_id="client-2"))
    ro = await begin(client_a)
    result = await client_a.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    with pytest.raises(ConfigurationError):
        await client_b.exchange_code(result)
    assert fake.calls("/token") == 0


@pytest.mark.parametrize(("member", "value"), [("crit", ["exp"]), ("b64", False), ("zip", "DEF")])
async def test_headers_that_change_verification(
    client: AsyncOAuthClient, fake: Any, begin: Any, member: str, value: Any
) -> None:
    ro = await begin(client)
    header = {"alg": "ES256", "kid": "as-sig-1", member: value}
    token = es256_sign(fake.sig_key, header, fake.response_claims(ro))
    with pytest.raises(JarmValidationError) as info:
        await client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])
    assert info.value.reason == "unsupported_header"


async def test_hand_signed_token_is_accepted(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    """Control for the test above: the same hand-made signature without the refused member verifies."""
    ro = await begin(client)
    token = es256_sign(fake.sig_key, {"alg": "ES256", "kid": "as-sig-1"}, fake.response_claims(ro))
    assert (await client.handle_callback(callback(ro, {"response": token}), expected_state=ro["state"])).code == ro["_code"]


async def test_refresh_validates_an_id_token(client: AsyncOAuthClient, fake: Any, clock: Any) -> None:
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "alice", "iat": clock.t, "exp": clock.t + 60}
    fake.token_extra = {"id_token": fake.sign(claims)}
    tokens = await client.refresh("rt")
    assert tokens.id_token_claims is not None and tokens.id_token_claims["sub"] == "alice"
    fake.token_extra = {"id_token": fake.sign({**claims, "iss": "https://evil.example"})}
    with pytest.raises(Exception) as info:
        await client.refresh("rt")
    assert getattr(info.value, "reason", None) == "iss_mismatch"


async def test_rediscovery_with_new_jwks_uri_drops_cached_keys(
    client: AsyncOAuthClient, fake: Any, begin: Any
) -> None:
    ro = await begin(client)
    await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    fake.metadata["jwks_uri"] = f"{ISSUER}/jwks?v=2"
    await client.discover()
    ro = await begin(client)
    await client.handle_callback(callback(ro, {"response": fake.jarm(ro)}), expected_state=ro["state"])
    assert fake.calls("/jwks") == 2


@pytest.mark.parametrize(
    "response",
    [
        42,
        {"response": 5},
        {"a" * 70000: "x"},
        f"{REDIRECT_URI}?response=%FF",
        "http://[::1/cb?code=x",
    ],
)
async def test_malformed_callback_inputs(client: AsyncOAuthClient, response: Any) -> None:
    with pytest.raises(AuthorizationResponseError) as info:
        await client.handle_callback(response, expected_state="session-state")
    assert info.value.reason in ("malformed", "too_large")


async def test_query_string_with_question_mark(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client)
    result = await client.handle_callback(f"?response={fake.jarm(ro)}", expected_state=ro["state"])
    assert result.code == ro["_code"]

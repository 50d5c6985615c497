"""Fixtures for the client tests: keys, a clock, the fake servers and client factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from jarmor.client import AsyncOAuthClient, ClientConfig, OAuthClient
from jarmor.jose import JwkSet

from .fake_server import CLIENT_ID, EVIL_ISSUER, ISSUER, REDIRECT_URI, Clock, FakeAS, Keys, Network


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(keys: Keys, clock: Clock) -> FakeAS:
    return FakeAS(ISSUER, keys, clock)


@pytest.fixture
def evil(keys: Keys, clock: Clock) -> FakeAS:
    return FakeAS(EVIL_ISSUER, keys, clock)


@pytest.fixture
def network(fake: FakeAS, evil: FakeAS) -> Network:
    return Network(fake, evil)


@pytest.fixture
def make_config(keys: Keys) -> Callable[..., ClientConfig]:
    def make(**overrides: Any) -> ClientConfig:
        base: dict[str, Any] = {
            "issuer": ISSUER,
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "signing_key": keys.client_sig,
            "signing_alg": "ES256",
            "authorization_signed_response_alg": "ES256",
            "id_token_signed_response_alg": "ES256",
            "decryption_keys": JwkSet((keys.client_enc,)),
        }
        base.update(overrides)
        return ClientConfig(**base)

    return make


@pytest.fixture
def make_client(
    network: Network, clock: Clock, make_config: Callable[..., ClientConfig]
) -> Iterator[Callable[..., AsyncOAuthClient]]:
    clients: list[AsyncOAuthClient] = []

    def make(config: ClientConfig | None = None, **kwargs: Any) -> AsyncOAuthClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(network.handle))
        client = AsyncOAuthClient(config or make_config(), http=http, clock=clock, **kwargs)
        clients.append(client)
        return client

    yield make


@pytest.fixture
def client(make_client: Callable[..., AsyncOAuthClient]) -> AsyncOAuthClient:
    return make_client()


@pytest.fixture
def sync_client(
    network: Network, clock: Clock, make_config: Callable[..., ClientConfig]
) -> Iterator[OAuthClient]:
    http = httpx.Client(transport=httpx.MockTransport(network.handle))
    with OAuthClient(make_config(), http=http, clock=clock) as client:
        yield client
    http.close()


@pytest.fixture
def begin(fake: FakeAS) -> Callable[..., Any]:
    """``ro = await begin(client, response_mode=...)``: start a flow and let the fake AS authorize it."""

    async def run(client: AsyncOAuthClient, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("scope", "accounts")
        start = await client.start_authorization(**kwargs)
        ro = fake.authorize(start.url)
        assert ro["state"] == start.state
        return ro

    return run

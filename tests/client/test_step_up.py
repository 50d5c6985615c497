"""Step-up for APIs in the client library (RFC 9470 §3, §4): a resource server's 401
``insufficient_user_authentication`` becomes ``StepUpRequired``, which starts the stronger login."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from jarmor.client import (
    AsyncOAuthClient,
    ClientConfig,
    ClientError,
    OAuthClient,
    ServerResponseError,
    StepUpRequired,
)

from .fake_server import Clock, FakeAS, FakeRS, Network

URL = "https://rs.example/data"


@pytest.fixture
def rs(fake: FakeAS, clock: Clock) -> FakeRS:
    return FakeRS(fake, clock)


@pytest.fixture
def network(fake: FakeAS, rs: FakeRS) -> Network:
    return Network(fake, rs)  # type: ignore[arg-type]


@pytest.fixture
def make_client(
    network: Network, clock: Clock, make_config: Callable[..., ClientConfig]
) -> Callable[..., AsyncOAuthClient]:
    def make(**overrides: Any) -> AsyncOAuthClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(network.handle))
        return AsyncOAuthClient(make_config(**overrides), http=http, clock=clock)

    return make


@pytest.fixture
def sync_client(network: Network, clock: Clock, make_config: Callable[..., ClientConfig]) -> Iterator[OAuthClient]:
    http = httpx.Client(transport=httpx.MockTransport(network.handle))
    with OAuthClient(make_config(), http=http, clock=clock) as client:
        yield client
    http.close()


@pytest.mark.parametrize(
    ("challenge", "acr_values", "max_age", "kwargs"),
    [
        (
            'Bearer realm="api", error="insufficient_user_authentication", '
            'error_description="A different authentication level is required", acr_values="aal2 aal3", max_age=5',
            ("aal2", "aal3"), 5, {"acr_values": ("aal2", "aal3"), "max_age": 5},
        ),
        ('Bearer error="insufficient_user_authentication", acr_values="aal2"', ("aal2",), None,
         {"acr_values": ("aal2",)}),
        ('bearer error="insufficient_user_authentication", max_age=0', (), 0, {"max_age": 0}),
        ('Bearer error="insufficient_user_authentication"', (), None, {}),
        ('DPoP algs="ES256", Bearer error="insufficient_user_authentication", acr_values="aal2"', ("aal2",), None,
         {"acr_values": ("aal2",)}),
    ],
)
async def test_step_up_challenge_is_raised_with_its_parameters(
    make_client: Any, fake: FakeAS, rs: FakeRS, challenge: str, acr_values: tuple[str, ...],
    max_age: int | None, kwargs: dict[str, Any],
) -> None:
    rs.step_up = challenge
    client = make_client()
    tokens = await client.client_credentials()
    with pytest.raises(StepUpRequired) as caught:
        await client.request("GET", URL, tokens)
    err = caught.value
    assert isinstance(err, ServerResponseError) and isinstance(err, ClientError)
    assert (err.status, err.error, err.reason) == (401, "insufficient_user_authentication", "step_up_required")
    assert (err.acr_values, err.max_age) == (acr_values, max_age)
    assert err.authorization_kwargs() == kwargs
    assert len(rs.requests) == 1  # no retry: only a new login helps


async def test_authorization_kwargs_start_the_stronger_login(make_client: Any, fake: FakeAS, rs: FakeRS) -> None:
    rs.step_up = 'Bearer error="insufficient_user_authentication", acr_values="aal2 aal3", max_age=60'
    client = make_client()
    tokens = await client.client_credentials()
    with pytest.raises(StepUpRequired) as caught:
        await client.request("GET", URL, tokens)
    start = await client.start_authorization(scope="openid accounts", **caught.value.authorization_kwargs())
    ro = fake.authorize(start.url)
    assert (ro["acr_values"], ro["max_age"]) == ("aal2 aal3", 60)


async def test_step_up_after_a_dpop_nonce_retry(make_client: Any, fake: FakeAS, rs: FakeRS) -> None:
    rs.nonce, rs.step_up = "rs-nonce", 'DPoP error="insufficient_user_authentication", acr_values="aal2"'
    client = make_client(dpop=True)
    tokens = await client.client_credentials()
    with pytest.raises(StepUpRequired) as caught:
        await client.request("GET", URL, tokens)
    assert caught.value.acr_values == ("aal2",) and len(rs.requests) == 2


def test_sync_client_raises_step_up(sync_client: OAuthClient, rs: FakeRS) -> None:
    rs.step_up = 'Bearer error="insufficient_user_authentication", max_age=300'
    tokens = sync_client.client_credentials()
    with pytest.raises(StepUpRequired) as caught:
        sync_client.request("GET", URL, tokens)
    assert (caught.value.acr_values, caught.value.max_age) == ((), 300)
    assert "max_age=300" in str(caught.value)


@pytest.mark.parametrize(
    "challenge",
    [
        'Bearer error="insufficient_user_authentication", max_age="soon"',
        'Bearer error="insufficient_user_authentication", max_age=-1',
        'Bearer error="insufficient_user_authentication", max_age=12345678901',
        'Bearer error="insufficient_user_authentication", acr_values="aal2  aal3"',
        'Bearer error="insufficient_user_authentication", acr_values="aal2\\"x"',
        'Bearer error="insufficient_user_authentication", acr_values=" "',
        'Bearer error="insufficient_user_authentication", acr_values="' + " ".join(["a"] * 17) + '"',
    ],
)
async def test_malformed_step_up_challenge_is_a_server_error(
    make_client: Any, rs: FakeRS, challenge: str
) -> None:
    rs.step_up = challenge
    client = make_client()
    tokens = await client.client_credentials()
    with pytest.raises(ServerResponseError) as caught:
        await client.request("GET", URL, tokens)
    assert not isinstance(caught.value, StepUpRequired)
    assert (caught.value.reason, caught.value.status) == ("invalid_challenge", 401)


@pytest.mark.parametrize(
    "challenge",
    ['Bearer error="invalid_token"', 'Bearer error="insufficient_scope", scope="write"', "Basic realm=x", ""],
)
async def test_other_401_is_returned_as_it_is(make_client: Any, rs: FakeRS, challenge: str) -> None:
    rs.step_up = challenge
    client = make_client()
    tokens = await client.client_credentials()
    response = await client.request("GET", URL, tokens)
    assert response.status_code == 401

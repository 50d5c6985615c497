"""Plain (non-JARM) responses: RFC 9207 ``iss`` (C11), state (C7) and unauthenticated errors (C1)."""

from __future__ import annotations

from typing import Any

import pytest

from jarmor.client import AsyncOAuthClient, AuthorizationResponseError, UnverifiedErrorResponse

from .fake_server import EVIL_ISSUER, ISSUER, REDIRECT_URI, callback


async def rejects(client: AsyncOAuthClient, fake: Any, response: Any, reason: str, **kwargs: Any) -> None:
    with pytest.raises(AuthorizationResponseError) as info:
        kwargs.setdefault("expected_state", fake.last_state)
        await client.handle_callback(response, **kwargs)
    assert info.value.reason == reason, info.value
    assert fake.calls("/token") == 0


async def test_wrong_iss(client: AsyncOAuthClient, fake: Any, evil: Any, begin: Any) -> None:
    """A78(a): mix-up — the response names another issuer."""
    ro = await begin(client, response_mode="query")
    await rejects(
        client,
        fake,
        callback(ro, {"code": ro["_code"], "state": ro["state"], "iss": EVIL_ISSUER}),
        "iss_mismatch",
    )
    assert evil.requests == []


@pytest.mark.parametrize("iss", [ISSUER + "/", "https://AS.example", ""])
async def test_iss_compared_exactly(client: AsyncOAuthClient, fake: Any, begin: Any, iss: str) -> None:
    ro = await begin(client, response_mode="fragment")
    await rejects(
        client, fake, callback(ro, {"code": ro["_code"], "state": ro["state"], "iss": iss}), "iss_mismatch"
    )


async def test_iss_missing_when_advertised(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    """A78(b) / RFC 9207 §2.4."""
    ro = await begin(client, response_mode="query")
    await rejects(client, fake, callback(ro, {"code": ro["_code"], "state": ro["state"]}), "iss_missing")


async def test_unadvertised_iss_is_still_compared(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    fake.metadata["authorization_response_iss_parameter_supported"] = False
    ro = await begin(client, response_mode="query")
    await rejects(
        client,
        fake,
        callback(ro, {"code": ro["_code"], "state": ro["state"], "iss": EVIL_ISSUER}),
        "iss_mismatch",
    )


async def test_iss_is_form_urldecoded(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="query")
    url = f"{REDIRECT_URI}?code={ro['_code']}&state={ro['state']}&iss=https%3A%2F%2Fas.example"
    assert (await client.handle_callback(url, expected_state=ro["state"])).code == ro["_code"]


async def test_state_checks(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="query")
    await rejects(client, fake, callback(ro, {"code": ro["_code"], "iss": ISSUER}), "state_missing")
    await rejects(
        client, fake, callback(ro, {"code": ro["_code"], "state": "other", "iss": ISSUER}), "state_mismatch"
    )
    ro2 = await begin(client, response_mode="query")
    params = {"code": ro2["_code"], "state": ro2["state"], "iss": ISSUER}
    await rejects(client, fake, callback(ro2, params), "state_mismatch", expected_state=ro["state"])
    # none of the refused callbacks ended the session's flow: its real response completes it, once
    genuine = callback(ro, {"code": ro["_code"], "state": ro["state"], "iss": ISSUER})
    assert (await client.handle_callback(genuine, expected_state=ro["state"])).code == ro["_code"]
    await rejects(client, fake, genuine, "state_replayed", expected_state=ro["state"])


async def test_code_missing(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="form_post")
    await rejects(client, fake, {"state": ro["state"], "iss": ISSUER}, "code_missing")


async def test_jarm_response_to_a_plain_flow(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="query")
    await rejects(client, fake, callback(ro, {"response": fake.jarm(ro)}), "response_mode_mismatch")


async def test_wrong_channel(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="fragment")
    url = f"{REDIRECT_URI}?code={ro['_code']}&state={ro['state']}&iss={ISSUER}"
    await rejects(client, fake, url, "response_mode_mismatch")


async def test_bare_error_is_unverified(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="query")
    params = {"error": "access_denied", "error_description": "<b>x</b>", "state": ro["state"], "iss": ISSUER}
    with pytest.raises(UnverifiedErrorResponse) as info:
        await client.handle_callback(callback(ro, params), expected_state=ro["state"])
    assert info.value.error == "access_denied"
    assert info.value.description == "<b>x</b>" and "<b>" not in str(info.value)
    await rejects(
        client,
        fake,
        callback(ro, {"code": ro["_code"], "state": ro["state"], "iss": ISSUER}),
        "state_replayed",
    )


async def test_redirect_uri_own_query_is_tolerated(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="fragment")
    url = f"{REDIRECT_URI}?tenant=t1#code={ro['_code']}&state={ro['state']}&iss={ISSUER}"
    assert (await client.handle_callback(url, expected_state=ro["state"])).code == ro["_code"]


async def test_bare_fragment_and_query_strings(client: AsyncOAuthClient, fake: Any, begin: Any) -> None:
    ro = await begin(client, response_mode="fragment")
    result = await client.handle_callback(f"#code={ro['_code']}&state={ro['state']}&iss={ISSUER}", expected_state=ro["state"])
    assert result.code == ro["_code"]
    ro = await begin(client, response_mode="query")
    result = await client.handle_callback(f"code={ro['_code']}&state={ro['state']}&iss={ISSUER}", expected_state=ro["state"])
    assert result.code == ro["_code"]

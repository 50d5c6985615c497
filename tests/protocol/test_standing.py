"""Issuing re-reads the client, grant and user after storing what it issues (protocol/standing.py).

Each test lets the change (offboarding, grant revocation, user disabled) commit at the worst moment — right
after the code or the tokens were stored and before the response — by hooking the store call that stores
them, and checks that the request fails, that nothing it stored stays usable, and that its flow record says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from jarmor.governance.lifecycle import offboard, revoke_grant
from jarmor.governance.records import FlowEvent
from jarmor.jose import generate_jwk
from jarmor.protocol.standing import CLIENT_CHANGED, CLIENT_DISABLED, GRANT_REVOKED, USER_DISABLED
from jarmor.protocol.tokens import token_hash
from jarmor.server.accounts import add_user
from jarmor.store.base import TokenRecord
from tests.kit import Kit, TestClient, all_tokens, ephemeral_keys, response_params

from ..server.conftest import KitFactory
from ..server.support import assert_error_page, assert_json_error


def after(obj: Any, name: str, then: Callable[[], Awaitable[None]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``then`` once, right after the first call of ``obj.name`` (the store call under test) returns."""
    original = getattr(obj, name)
    done = False

    async def hooked(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        result = await original(*args, **kwargs)
        if not done:
            done = True
            await then()
        return result

    monkeypatch.setattr(obj, name, hooked)


async def events(kit: Kit) -> list[FlowEvent]:
    await kit.server.flows.flush()
    return [FlowEvent.from_payload(orjson.loads(r.body)) for r in await kit.store.flows.scan()]


async def code_and_context(kit: Kit, client: TestClient) -> tuple[str, dict[str, Any]]:
    ro, ctx = client.request_object()
    r = await kit.par(client, {"request": ro, "client_id": client.client_id})
    assert r.status_code == 201, r.text
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    params = response_params(r)
    if "response" in params:
        params = kit.jarm(client, params["response"])
    return params["code"], ctx


def code_form(code: str, ctx: dict[str, Any]) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": ctx["redirect_uri"],
            "code_verifier": ctx["code_verifier"]}


def offboarding(kit: Kit, client: TestClient) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await offboard(kit.store, client.client_id, reason="vendor compromised", by="cli:root", now=kit.env.now())
    return run


def active(tokens: list[TokenRecord]) -> list[TokenRecord]:
    return [t for t in tokens if t.revoked_at is None]


async def test_offboarding_committed_while_a_code_is_redeemed_fails_the_redemption(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await kit.add_client(risk_tier="baseline")
    code, ctx = await code_and_context(kit, client)
    # the worst moment: the access token is stored, the offboarding's revocation ran before it
    after(kit.store.tokens, "create", offboarding(kit, client), monkeypatch)

    assert_json_error(await kit.token(client, code_form(code, ctx)), "invalid_client", 401)
    assert all_tokens(kit) and not active(all_tokens(kit))
    assert all(g.revoked_at is not None for g in await kit.store.grants.list_for_client(client.client_id))
    token_event = [e for e in await events(kit) if e.stage == "token"][-1]
    assert (token_event.outcome, token_event.error_description) == ("invalid_client", CLIENT_DISABLED)


async def test_offboarding_committed_while_a_code_is_issued_withdraws_the_code(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await kit.add_client(risk_tier="baseline")
    ro, _ = client.request_object()
    r = await kit.par(client, {"request": ro, "client_id": client.client_id})
    assert r.status_code == 201
    after(kit.store.ephemeral, "put", offboarding(kit, client), monkeypatch)  # the code's put

    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    assert_error_page(r, "invalid_client")
    assert ephemeral_keys(kit, "code") == []
    code_event = [e for e in await events(kit) if e.stage == "code"][-1]
    assert (code_event.outcome, code_event.error_description) == ("invalid_client", CLIENT_DISABLED)


async def test_offboarding_committed_during_client_credentials_revokes_the_token(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_post",
                                  jwks=None, grant_types=["client_credentials"], redirect_uris=[], scope="profile")
    after(kit.store.tokens, "create", offboarding(kit, client), monkeypatch)
    r = await kit.token(client, {"grant_type": "client_credentials"})
    assert_json_error(r, "invalid_client", 401)
    assert all_tokens(kit) and not active(all_tokens(kit))


async def test_grant_revoked_while_a_refresh_runs_fails_it_and_revokes_what_it_issued(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation commits after the refresh token rotated and before the new access token is stored: the
    revocation's token sweep misses that access token, so the refresh must notice and revoke it."""
    client = await kit.add_client(risk_tier="baseline")
    first = await kit.full_flow(client)
    grant = (await kit.store.grants.list_for_client(client.client_id))[0]

    async def revoke() -> None:
        await revoke_grant(kit.store, grant.grant_id, reason="user asked", by="admin:carol", now=kit.env.now())

    after(kit.store.tokens, "rotate", revoke, monkeypatch)
    r = await kit.token(client, {"grant_type": "refresh_token", "refresh_token": first["token"].json()["refresh_token"]})
    assert_json_error(r, "invalid_grant")
    assert r.json()["error_description"] == GRANT_REVOKED
    assert not active([t for t in all_tokens(kit) if t.grant_id == grant.grant_id])


async def test_a_disabled_user_cannot_refresh_or_redeem(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline")
    await add_user(kit.store.users, "alice", "password-123")  # the auto-approve subject
    first = await kit.full_flow(client)
    code, ctx = await code_and_context(kit, client)
    user = await kit.store.users.get("alice")
    assert user is not None
    user.disabled = True
    await kit.store.users.update(user)

    r = await kit.token(client, {"grant_type": "refresh_token", "refresh_token": first["token"].json()["refresh_token"]})
    assert_json_error(r, "invalid_grant")
    assert r.json()["error_description"] == USER_DISABLED
    assert_json_error(await kit.token(client, code_form(code, ctx)), "invalid_grant")
    assert not active(all_tokens(kit))


async def test_a_user_disabled_before_consent_gets_no_code(make: KitFactory) -> None:
    import re
    from html import unescape

    kit = await make(auto_approve=None)
    await add_user(kit.store.users, "bob", "password-123")
    client = await kit.add_client(risk_tier="baseline")
    ro, _ = client.request_object()
    r = await kit.par(client, {"request": ro, "client_id": client.client_id})
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})

    def form(html: str) -> tuple[str, str]:
        action = re.search(r'<form method="post" action="([^"]+)"', html)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert action and token, html[:300]
        return unescape(action.group(1)), unescape(token.group(1))

    action, csrf = form(r.text)
    r = await kit.http.post(action, data={"csrf_token": csrf, "username": "bob", "password": "password-123"})
    assert r.status_code == 303, r.text  # signed in: on to the consent page (its own address)
    r = await kit.http.get(r.headers["location"])
    assert r.status_code == 200, r.text
    user = await kit.store.users.get("bob")
    assert user is not None
    user.disabled = True
    await kit.store.users.update(user)

    action, csrf = form(r.text)
    r = await kit.http.post(action, data={"csrf_token": csrf, "decision": "approve"})
    params = response_params(r)
    if "response" in params:
        params = kit.jarm(client, params["response"])
    assert params["error"] == "access_denied" and "code" not in params
    assert ephemeral_keys(kit, "code") == []
    code_event = [e for e in await events(kit) if e.stage == "code"][-1]
    assert (code_event.outcome, code_event.error_description) == ("access_denied", USER_DISABLED)


async def test_keys_replaced_while_tokens_are_issued_fail_the_request_and_revoke_only_its_tokens(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The assertion was verified with the key being replaced: the request fails, what it issued is revoked,
    and the client's other tokens are left alone (this is a key rotation, not an offboarding)."""
    client = await kit.add_client(risk_tier="baseline")
    earlier = (await kit.full_flow(client))["token"].json()
    code, ctx = await code_and_context(kit, client)

    async def replace_keys() -> None:
        record = await kit.store.clients.get(client.client_id)
        assert record is not None
        record.metadata["jwks"] = {"keys": [generate_jwk("ES256", kid="next").public_dict()]}
        record.updated_at += 1
        await kit.store.clients.update(record)

    after(kit.store.tokens, "create", replace_keys, monkeypatch)
    r = await kit.token(client, code_form(code, ctx))
    assert_json_error(r, "invalid_client", 401)
    assert r.json()["error_description"] == CLIENT_CHANGED
    still = {t.token_hash for t in active(all_tokens(kit))}
    assert still == {token_hash(earlier["access_token"]), token_hash(earlier["refresh_token"])}

"""Disabling or removing a user (``jarmor users disable | remove``) ends their access, including a code
issued before and redeemed after: the token endpoint refuses it, so no grant is created after the account's
grants were revoked."""

from __future__ import annotations

import pytest

from jarmor.server.account_lifecycle import remove_user, set_user_disabled
from jarmor.server.accounts import add_user
from tests.kit import Kit, response_params


async def _code_then(kit: Kit, action: str) -> tuple[int, dict[str, object]]:
    await add_user(kit.store.users, "alice", "alice's password")  # the auto-approved subject is an account
    client = await kit.add_client()
    ro, ctx = client.request_object()
    r = await kit.par(client, {"request": ro, "client_id": client.client_id})
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    params = response_params(r)
    if "response" in params:
        params = kit.jarm(client, params["response"])
    now = kit.server.env.now()
    if action == "disable":
        await set_user_disabled(kit.store, "alice", True, by="test", now=int(now))
    elif action == "remove":
        await remove_user(kit.store, "alice", by="test", now=int(now))
    t = await kit.token(client, {"grant_type": "authorization_code", "code": str(params["code"]),
                                 "redirect_uri": ctx["redirect_uri"], "code_verifier": ctx["code_verifier"]})
    return t.status_code, t.json()


@pytest.mark.parametrize("action", ["disable", "remove"])
async def test_a_code_of_a_disabled_or_removed_user_is_refused(kit: Kit, action: str) -> None:
    status, body = await _code_then(kit, action)
    assert status == 400 and body["error"] == "invalid_grant"
    assert not [g for c in await kit.store.clients.list() for g in await kit.store.grants.list_for_client(c.client_id)]


async def test_a_code_of_an_enabled_user_is_redeemed(kit: Kit) -> None:
    status, body = await _code_then(kit, "none")
    assert status == 200 and body["access_token"]

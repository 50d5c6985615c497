"""Offboarding a client, revoking single grants, the inventory and the entitlement review.

Offboarding disables the client (who, when, why), revokes its tokens and grants and is recorded in the
audit log; new flows then fail with ``invalid_client`` (PAR and token: JSON 401; /authorize: error page) and
introspection of its earlier tokens says ``active: false``.
"""

from __future__ import annotations

from typing import Any

import pytest

from jarmor.governance.inventory import client_summary, entitlement_review, entitlements, inventory
from jarmor.governance.lifecycle import GovernanceError, offboard, revoke_grant
from jarmor.protocol.tokens import token_hash
from tests.kit import Clock, Kit, TestClient

from .support import assert_error_page, assert_json_error, plain_request


@pytest.fixture
async def app(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline", client_name="Vendor App", owner="team-vendors",
                                contacts=["vendor@rp.example"], client_kind="third-party")


@pytest.fixture
async def rs(kit: Kit) -> TestClient:
    """A resource server: may introspect other clients' access tokens."""
    return await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_post", jwks=None,
                                grant_types=["client_credentials"], redirect_uris=[], resource_server=True)


async def introspect(kit: Kit, caller: TestClient, token: str) -> dict[str, Any]:
    r = await kit.http.post("/introspect", data={**caller.auth_form(), "token": token})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def tokens(kit: Kit, client: TestClient, **claims: Any) -> dict[str, Any]:
    r = (await kit.full_flow(client, **claims))["token"]
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_offboarding_disables_revokes_and_records(kit: Kit, app: TestClient, rs: TestClient) -> None:
    t1, t2 = await tokens(kit, app), await tokens(kit, app, scope="openid profile")
    assert (await introspect(kit, rs, t1["access_token"]))["active"] is True
    now = kit.env.now()

    result = await offboard(kit.store, app.client_id, reason="vendor contract ended", by="admin:carol", now=now)
    kit.server.directory.invalidate(app.client_id)

    assert (result.disabled, result.tokens_revoked, result.grants_revoked) == (True, 4, 2)
    record = await kit.store.clients.get(app.client_id)
    assert record is not None
    assert (record.disabled_at, record.disabled_reason, record.disabled_by) == (
        now, "vendor contract ended", "admin:carol"
    )
    for t in (t1, t2):
        for token in (t["access_token"], t["refresh_token"]):
            assert await introspect(kit, rs, token) == {"active": False}
    assert all(g.revoked_at == now for g in await kit.store.grants.list_for_client(app.client_id))
    event = (await kit.store.audit.list(target=f"client:{app.client_id}"))[0]
    assert (event.action, event.actor, event.reason) == ("client.offboard", "admin:carol", "vendor contract ended")
    assert event.details["tokens_revoked"] == 4


async def test_new_flows_fail_with_invalid_client(kit: Kit, app: TestClient) -> None:
    t = await tokens(kit, app)
    await offboard(kit.store, app.client_id, reason="compromised", by="admin:carol", now=kit.env.now())
    kit.server.directory.invalidate(app.client_id)

    ro, _ = app.request_object()
    assert_json_error(await kit.par(app, {"request": ro, "client_id": app.client_id}), "invalid_client", 401)
    r = await kit.token(app, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"]})
    assert_json_error(r, "invalid_client", 401)
    params, _ = plain_request(app)
    assert_error_page(await kit.authorize(params), "invalid_client")


async def test_a_stale_cache_cannot_keep_a_disabled_clients_tokens_alive(
    kit: Kit, app: TestClient, rs: TestClient
) -> None:
    """Even if another process still had the client cached as enabled and minted a token after the
    revocation, introspection answers inactive once it sees the client disabled."""
    t = await tokens(kit, app)
    await kit.store.clients.disable(app.client_id, at=kit.env.now(), reason="x", by="admin:carol")
    kit.server.directory.invalidate(app.client_id)
    assert await introspect(kit, rs, t["access_token"]) == {"active": False}


async def test_offboarding_needs_a_reason_and_a_known_client(kit: Kit, app: TestClient) -> None:
    with pytest.raises(GovernanceError, match="reason"):
        await offboard(kit.store, app.client_id, reason="  ", by="admin:carol", now=kit.env.now())
    with pytest.raises(GovernanceError, match="no client"):
        await offboard(kit.store, "nobody", reason="x", by="admin:carol", now=kit.env.now())
    record = await kit.store.clients.get(app.client_id)
    assert record is not None and record.disabled_at is None


async def test_offboarding_twice_is_recorded_twice(kit: Kit, app: TestClient) -> None:
    await offboard(kit.store, app.client_id, reason="first", by="admin:carol", now=kit.env.now())
    again = await offboard(kit.store, app.client_id, reason="second", by="cli:root", now=kit.env.now())
    assert again.disabled is False
    record = await kit.store.clients.get(app.client_id)
    assert record is not None and record.disabled_reason == "first", "the first decision stands"
    actions = [(e.action, e.reason) for e in await kit.store.audit.list(target=f"client:{app.client_id}")]
    assert actions[:2] == [("client.offboard", "second"), ("client.offboard", "first")]


# --- single grants and the entitlement review --------------------------------------------------------------


async def test_revoking_one_grant_leaves_the_others(kit: Kit, app: TestClient, rs: TestClient) -> None:
    t1, t2 = await tokens(kit, app), await tokens(kit, app)
    assert len(await kit.store.grants.list_for_client(app.client_id)) == 2
    rec = await kit.store.tokens.get(token_hash(t1["access_token"]))  # the grant behind t1
    assert rec is not None and rec.grant_id
    result = await revoke_grant(kit.store, rec.grant_id, reason="user left", by="admin:carol", now=kit.env.now())
    assert result.revoked and result.tokens_revoked == 2
    assert await introspect(kit, rs, t1["access_token"]) == {"active": False}
    assert (await introspect(kit, rs, t2["access_token"]))["active"] is True
    r = await kit.token(app, {"grant_type": "refresh_token", "refresh_token": t1["refresh_token"]})
    assert_json_error(r, "invalid_grant")
    grant = await kit.store.grants.get(rec.grant_id)
    assert grant is not None and grant.revoked_reason == "user left"
    event = (await kit.store.audit.list(target=f"client:{app.client_id}"))[0]
    assert event.action == "grant.revoke" and event.details["grant_id"] == rec.grant_id


async def test_revoking_an_unknown_grant(kit: Kit) -> None:
    with pytest.raises(GovernanceError, match="no grant"):
        await revoke_grant(kit.store, "nope", reason="x", by="admin:carol", now=kit.env.now())


async def test_entitlement_review(kit: Kit, app: TestClient, rs: TestClient, clock: Clock) -> None:
    granted_at = kit.env.now()
    await tokens(kit, app, scope="openid profile")
    clock.advance(120)
    review = await entitlements(kit.store, kit.env.now())
    mine = [e for e in review if e.client_id == app.client_id]
    assert len(mine) == 1
    e = mine[0]
    assert (e.kind, e.scopes, e.subject, e.granted_by, e.active_tokens) == (
        "grant", ["openid", "profile"], "alice", "alice", 2
    )
    assert granted_at <= e.granted_at <= granted_at + 1
    machine = [e for e in review if e.client_id == rs.client_id]
    assert [(m.kind, m.scopes, m.granted_by) for m in machine] == [("client_credentials", None, "admin")]
    assert await entitlements(kit.store, kit.env.now(), client_id=rs.client_id) == machine
    with pytest.raises(LookupError):
        await entitlements(kit.store, kit.env.now(), client_id="nobody")
    await offboard(kit.store, app.client_id, reason="x", by="admin:carol", now=kit.env.now())
    assert await entitlements(kit.store, kit.env.now(), client_id=app.client_id) == []


async def test_entitlement_review_groups_by_user_client_and_scopes(
    kit: Kit, app: TestClient, rs: TestClient, clock: Clock
) -> None:
    """Issue 12, review accuracy: seven sign-ins of one user to one client with the same scopes are one row."""
    first = kit.env.now()
    for _ in range(7):
        await tokens(kit, app, scope="openid profile")
        clock.advance(3)
    await tokens(kit, app, scope="profile openid")  # the same set of scopes, in another order
    last = kit.env.now()
    clock.advance(3)
    await tokens(kit, app, scope="openid")
    per_grant = [e for e in await entitlements(kit.store, kit.env.now()) if e.client_id == app.client_id]
    assert len(per_grant) == 9  # every grant is still there, and revocable on its own
    groups = [g for g in await entitlement_review(kit.store, kit.env.now()) if g.client_id == app.client_id]
    assert [(g.subject, sorted(g.scopes or ()), g.grants) for g in groups] == [
        ("alice", ["openid", "profile"], 8), ("alice", ["openid"], 1)]
    both = groups[0]
    assert first <= both.first_granted_at <= first + 1 and both.last_granted_at == last
    assert both.granted_by == ["alice"] and both.active_tokens == 16
    assert sorted(both.grant_ids) == sorted(e.grant_id or "" for e in per_grant if len(e.scopes or ()) == 2)
    assert both.to_json()["grant_ids"] == both.grant_ids
    machine = [g for g in await entitlement_review(kit.store, kit.env.now()) if g.client_id == rs.client_id]
    assert [(g.kind, g.subject, g.grants, g.grant_ids) for g in machine] == [("client_credentials", None, 1, [])]
    for grant_id in both.grant_ids:  # revoking a group: each of its grants
        await revoke_grant(kit.store, grant_id, reason="review", by="admin:carol", now=kit.env.now())
    groups = [g for g in await entitlement_review(kit.store, kit.env.now()) if g.client_id == app.client_id]
    assert [(g.scopes, g.grants) for g in groups] == [(["openid"], 1)]


async def test_inventory(kit: Kit, app: TestClient, rs: TestClient, clock: Clock) -> None:
    created = kit.env.now()
    await tokens(kit, app)
    clock.advance(600)
    summary = {c.client_id: c for c in await inventory(kit.store, kit.env.now())}[app.client_id]
    assert (summary.name, summary.risk_tier, summary.client_kind, summary.owner, summary.contacts) == (
        "Vendor App", "baseline", "third-party", "team-vendors", ["vendor@rp.example"]
    )
    assert summary.auth_method == "private_key_jwt" and summary.status == "active"
    assert (summary.active_grants, summary.active_tokens) == (1, 2)
    assert summary.last_used_at is not None and created <= summary.last_used_at <= created + 1
    [key] = summary.keys
    assert key.kid == app.key.kid and key.age >= 600
    rec = await kit.store.clients.get(rs.client_id)
    assert rec is not None
    machine = await client_summary(kit.store, rec, kit.env.now())
    assert machine.client_kind == "machine" and machine.resource_server and machine.keys == []
    assert summary.to_json()["status"] == "active" and "metadata" not in summary.to_json()

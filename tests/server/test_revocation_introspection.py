"""Token revocation (RFC 7009) and introspection (RFC 7662): checklist-2 sections P and Q (S73-S81).

Choices (documented in ``protocol/revocation.py`` and ``protocol/introspection.py``): another client's token
is "refused" silently with 200 (S75); a hint other than ``access_token`` / ``refresh_token`` is
``unsupported_token_type`` at revocation and ignored at introspection; a client introspects its own tokens,
a ``resource_server`` client any client's *access* tokens; public clients may revoke but not introspect.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.kit import Clock, Kit, TestClient

from .support import assert_json_error, code_from, plain_request, redeem


@pytest.fixture
async def app(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


@pytest.fixture
async def other(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


@pytest.fixture
async def rs(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_post", jwks=None,
                                grant_types=["client_credentials"], redirect_uris=[], resource_server=True)


@pytest.fixture
async def public(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="none", jwks=None)


async def issue(kit: Kit, client: TestClient, **claims: Any) -> dict[str, Any]:
    if client.metadata["token_endpoint_auth_method"] == "none":  # no keys: a plain authorization request
        params, verifier = plain_request(client)
        code = code_from(kit, client, await kit.authorize(params))["code"]
        r = await redeem(kit, client, code, verifier)
    else:
        r = (await kit.full_flow(client, **claims))["token"]
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def revoke(kit: Kit, client: TestClient, token: str, **extra: str) -> httpx.Response:
    return await kit.http.post("/revoke", data={**client.auth_form(), "token": token, **extra})


async def introspect(kit: Kit, caller: TestClient, token: str, **extra: str) -> dict[str, Any]:
    r = await kit.http.post("/introspect", data={**caller.auth_form(), "token": token, **extra})
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers["cache-control"]
    body: dict[str, Any] = r.json()
    return body


async def refresh(kit: Kit, client: TestClient, rt: str) -> httpx.Response:
    return await kit.token(client, {"grant_type": "refresh_token", "refresh_token": rt})


# --- metadata ---------------------------------------------------------------------------------------------


async def test_endpoints_are_advertised(kit: Kit) -> None:
    meta = (await kit.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["revocation_endpoint"] == f"{kit.env.issuer}/revoke"
    assert meta["introspection_endpoint"] == f"{kit.env.issuer}/introspect"
    assert "none" in meta["revocation_endpoint_auth_methods_supported"]
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in meta["introspection_endpoint_auth_methods_supported"]
    assert meta["introspection_endpoint_auth_signing_alg_values_supported"]
    assert meta["revocation_endpoint_auth_signing_alg_values_supported"]


# --- P. revocation ----------------------------------------------------------------------------------------


async def test_s73_bad_credentials_revoke_nothing(kit: Kit, app: TestClient) -> None:
    t = await issue(kit, app)
    r = await kit.http.post("/revoke", data={"client_id": app.client_id, "token": t["refresh_token"]})
    assert_json_error(r, "invalid_client", 401)
    r = await kit.http.post("/revoke", data={**app.auth_form(exp=1), "token": t["refresh_token"]})
    assert_json_error(r, "invalid_client", 401)
    assert (await introspect(kit, app, t["access_token"]))["active"] is True


async def test_s73_token_is_required_and_post_only(kit: Kit, app: TestClient) -> None:
    assert_json_error(await kit.http.post("/revoke", data=app.auth_form()), "invalid_request")
    assert (await kit.http.get("/revoke")).status_code == 405


async def test_s74_unknown_and_repeated_tokens_answer_200(kit: Kit, app: TestClient) -> None:
    for token in ("garbage", "x" * 5000):
        r = await revoke(kit, app, token)
        assert r.status_code == 200 and r.content == b"" and "no-store" in r.headers["cache-control"]
    t = await issue(kit, app)
    assert (await revoke(kit, app, t["access_token"])).status_code == 200
    assert (await revoke(kit, app, t["access_token"])).status_code == 200


async def test_s75_another_clients_token_is_left_alone(kit: Kit, app: TestClient, other: TestClient) -> None:
    t = await issue(kit, app)
    r = await revoke(kit, other, t["refresh_token"])
    assert r.status_code == 200, "refused silently: no oracle for which token strings exist"
    assert (await refresh(kit, app, t["refresh_token"])).status_code == 200


async def test_s76_a_wrong_hint_still_finds_the_token(kit: Kit, app: TestClient) -> None:
    t = await issue(kit, app)
    assert (await revoke(kit, app, t["refresh_token"], token_type_hint="access_token")).status_code == 200
    assert_json_error(await refresh(kit, app, t["refresh_token"]), "invalid_grant")
    t = await issue(kit, app)
    assert (await revoke(kit, app, t["access_token"], token_type_hint="refresh_token")).status_code == 200
    assert await introspect(kit, app, t["access_token"]) == {"active": False}


@pytest.mark.parametrize("hint", ["id_token", "authorization_code", "foo"])
async def test_s76_unsupported_token_type(kit: Kit, app: TestClient, hint: str) -> None:
    t = await issue(kit, app)
    r = await revoke(kit, app, t["access_token"], token_type_hint=hint)
    assert_json_error(r, "unsupported_token_type")
    assert (await introspect(kit, app, t["access_token"]))["active"] is True


async def test_s77_revoking_a_refresh_token_ends_the_grant(kit: Kit, app: TestClient) -> None:
    t1 = await issue(kit, app)
    t2 = (await refresh(kit, app, t1["refresh_token"])).json()
    assert (await revoke(kit, app, t1["refresh_token"])).status_code == 200
    for token in (t1["access_token"], t2["access_token"], t2["refresh_token"]):
        assert await introspect(kit, app, token) == {"active": False}
    assert_json_error(await refresh(kit, app, t2["refresh_token"]), "invalid_grant")
    [grant] = await kit.store.grants.list_for_client(app.client_id)
    assert grant.revoked_at is not None and "RFC 7009" in (grant.revoked_reason or "")


async def test_s77_revoking_an_access_token_ends_only_that_token(kit: Kit, app: TestClient) -> None:
    t = await issue(kit, app)
    assert (await revoke(kit, app, t["access_token"])).status_code == 200
    assert await introspect(kit, app, t["access_token"]) == {"active": False}
    assert (await introspect(kit, app, t["refresh_token"]))["active"] is True
    assert (await refresh(kit, app, t["refresh_token"])).status_code == 200


async def test_public_clients_may_revoke_their_tokens(kit: Kit, public: TestClient) -> None:
    t = await issue(kit, public)
    assert (await revoke(kit, public, t["refresh_token"])).status_code == 200
    assert_json_error(await refresh(kit, public, t["refresh_token"]), "invalid_grant")


async def test_client_credentials_token_revocation(kit: Kit, rs: TestClient) -> None:
    r = await kit.token(rs, {"grant_type": "client_credentials"})
    token = r.json()["access_token"]
    assert (await revoke(kit, rs, token)).status_code == 200
    assert await introspect(kit, rs, token) == {"active": False}


# --- Q. introspection ---------------------------------------------------------------------------------------


async def test_s78_callers_must_authenticate(kit: Kit, app: TestClient, public: TestClient) -> None:
    t = await issue(kit, app)
    r = await kit.http.post("/introspect", data={"token": t["access_token"]})
    assert_json_error(r, "invalid_client", 401)
    r = await kit.http.post("/introspect", data={**app.auth_form(exp=1), "token": t["access_token"]})
    assert_json_error(r, "invalid_client", 401)
    pt = await issue(kit, public)
    r = await kit.http.post("/introspect", data={**public.auth_form(), "token": pt["access_token"]})
    body = assert_json_error(r, "invalid_client", 401)
    assert "active" not in body


async def test_s78_ordinary_clients_see_only_their_own_tokens(
    kit: Kit, app: TestClient, other: TestClient
) -> None:
    t = await issue(kit, app)
    assert await introspect(kit, other, t["access_token"]) == {"active": False}
    assert (await introspect(kit, app, t["access_token"]))["active"] is True


async def test_s78_a_resource_server_sees_every_clients_access_tokens(
    kit: Kit, app: TestClient, rs: TestClient
) -> None:
    t = await issue(kit, app, scope="openid profile")
    body = await introspect(kit, rs, t["access_token"])
    assert body["active"] is True and body["client_id"] == app.client_id and body["sub"] == "alice"
    assert await introspect(kit, rs, t["refresh_token"]) == {"active": False}, "refresh tokens stay private"


async def test_s79_token_is_required_and_hints_do_not_matter(kit: Kit, app: TestClient) -> None:
    r = await kit.http.post("/introspect", data=app.auth_form())
    assert_json_error(r, "invalid_request")
    t = await issue(kit, app)
    for hint in ("access_token", "refresh_token", "something-else"):
        assert (await introspect(kit, app, t["refresh_token"], token_type_hint=hint))["active"] is True


async def test_s80_inactive_is_exactly_active_false(kit: Kit, app: TestClient, clock: Clock) -> None:
    assert await introspect(kit, app, "unknown") == {"active": False}
    assert await introspect(kit, app, "x" * 5000) == {"active": False}
    t = await issue(kit, app)
    await revoke(kit, app, t["access_token"])
    assert await introspect(kit, app, t["access_token"]) == {"active": False}
    t = await issue(kit, app)
    clock.advance(kit.env.policy.tier("baseline").access_token_lifetime + 1)
    later = {"iat": kit.env.now(), "exp": kit.env.now() + 60}  # the assertion follows the test clock
    r = await kit.http.post("/introspect", data={**app.auth_form(**later), "token": t["access_token"]})
    assert r.json() == {"active": False}
    r = await kit.http.post("/introspect", data={**app.auth_form(**later), "token": t["refresh_token"]})
    assert r.json()["active"] is True


async def test_s81_active_response(kit: Kit, app: TestClient) -> None:
    now = kit.env.now()
    t = await issue(kit, app, scope="openid profile")
    body = await introspect(kit, app, t["access_token"])
    lifetime = kit.env.policy.tier("baseline").access_token_lifetime
    assert body["active"] is True and body["iss"] == kit.env.issuer and body["client_id"] == app.client_id
    assert body["scope"] == "openid profile" and body["token_type"] == "Bearer" and body["sub"] == "alice"
    assert isinstance(body["exp"], int) and isinstance(body["iat"], int)
    assert now <= body["iat"] <= now + 1 and body["exp"] == body["iat"] + lifetime
    rt = await introspect(kit, app, t["refresh_token"])
    assert rt["active"] is True and rt["token_type"] == "refresh_token"


async def test_machine_token_has_no_subject(kit: Kit, rs: TestClient) -> None:
    token = (await kit.token(rs, {"grant_type": "client_credentials", "scope": "profile"})).json()["access_token"]
    body = await introspect(kit, rs, token)
    assert body["active"] is True and body["scope"] == "profile" and "sub" not in body


async def test_token_issuance_records_last_use(kit: Kit, app: TestClient, clock: Clock) -> None:
    record = await kit.store.clients.get(app.client_id)
    assert record is not None and record.last_used_at is None
    clock.advance(30)
    await issue(kit, app)
    record = await kit.store.clients.get(app.client_id)
    assert record is not None and record.last_used_at == kit.env.now()

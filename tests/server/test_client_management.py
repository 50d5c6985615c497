"""The client configuration endpoint (RFC 7592): read, update (full replacement, key rotation), delete.

Checklist S68-S72. jarmor rotates the registration access token on every successful call: each response
carries a new one and the presented one answers 401 from then on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from jarmor.governance.lifecycle import offboard
from jarmor.jose import generate_jwk
from jarmor.protocol.registration import register
from tests.kit import ASSERTION_TYPE, REDIRECT, Kit, TestClient

from .support import assert_error_page, assert_json_error, plain_request

pytestmark = pytest.mark.asyncio


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Registration:
    """The client's view of its registration: the URI and the newest registration access token."""

    def __init__(self, kit: Kit, body: dict[str, Any]) -> None:
        self.kit = kit
        self.uri = str(body["registration_client_uri"])
        self.token = str(body["registration_access_token"])
        self.body = body

    async def get(self) -> httpx.Response:
        r = await self.kit.http.get(self.uri, headers=bearer(self.token))
        self._remember(r)
        return r

    async def put(self, metadata: dict[str, Any]) -> httpx.Response:
        r = await self.kit.http.put(self.uri, json=metadata, headers=bearer(self.token))
        self._remember(r)
        return r

    async def delete(self) -> httpx.Response:
        return await self.kit.http.delete(self.uri, headers=bearer(self.token))

    def _remember(self, r: httpx.Response) -> None:
        if r.status_code == 200:
            self.body = r.json()
            self.token = self.body["registration_access_token"]

    def update_body(self, **changes: Any) -> dict[str, Any]:
        """The last response, edited, without the members RFC 7592 §2.2 forbids (what a client PUTs)."""
        body = {k: v for k, v in self.body.items() if k not in (
            "registration_access_token", "registration_client_uri", "client_secret_expires_at",
            "client_id_issued_at", "client_secret",
        )}
        body.update(changes)
        return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
async def client(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline", client_name="Managed App", logo_uri="https://rp.example/l.png")


@pytest.fixture
def reg(kit: Kit, client: TestClient) -> Registration:
    return Registration(kit, client.metadata)


def assert_bearer_401(r: httpx.Response, *, with_error: bool = True) -> None:
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is with_error
    assert "no-store" in r.headers["cache-control"]
    assert "client_id" not in r.json(), "a refused call reveals nothing about the client"


# --- S68 authentication ----------------------------------------------------------------------------------


async def test_registration_client_uri_is_the_registration_endpoint_plus_client_id(
    kit: Kit, client: TestClient
) -> None:
    assert client.metadata["registration_client_uri"] == f"{kit.env.endpoints.registration}/{client.client_id}"


async def test_no_token_is_401_without_error_code(kit: Kit, reg: Registration) -> None:
    assert_bearer_401(await kit.http.get(reg.uri), with_error=False)


@pytest.mark.parametrize("header", ["Bearer nope", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer " + "x" * 300])
async def test_wrong_token_or_scheme_is_401(kit: Kit, reg: Registration, header: str) -> None:
    assert_bearer_401(await kit.http.get(reg.uri, headers={"Authorization": header}))


async def test_another_clients_token_is_401(kit: Kit, reg: Registration) -> None:
    other = await kit.add_client(risk_tier="baseline")
    r = await kit.http.get(reg.uri, headers=bearer(other.metadata["registration_access_token"]))
    assert_bearer_401(r)


async def test_unknown_client_is_401_never_404(kit: Kit, reg: Registration) -> None:
    r = await kit.http.get(f"{kit.env.endpoints.registration}/no-such-client", headers=bearer(reg.token))
    assert_bearer_401(r)


async def test_initial_access_token_is_not_a_registration_token(kit: Kit, reg: Registration) -> None:
    assert_bearer_401(await kit.http.get(reg.uri, headers=bearer("initial-token")))


async def test_other_methods_are_405(kit: Kit, reg: Registration) -> None:
    r = await kit.http.post(reg.uri, json={}, headers=bearer(reg.token))
    assert_json_error(r, "invalid_request", 405)


async def test_administratively_disabled_client_is_403(kit: Kit, client: TestClient, reg: Registration) -> None:
    await offboard(kit.store, client.client_id, reason="contract ended", by="admin:root", now=kit.env.now())
    r = await reg.get()
    assert_json_error(r, "access_denied", 403)


# --- S69 / S71 read and rotation ----------------------------------------------------------------------------


async def test_read_returns_the_registration_and_rotates_the_token(kit: Kit, reg: Registration) -> None:
    first = reg.token
    r = await reg.get()
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers["cache-control"]
    body = r.json()
    assert body["client_id"] == reg.body["client_id"]
    assert body["client_name"] == "Managed App" and body["risk_tier"] == "baseline"
    assert body["registration_client_uri"] == reg.uri
    assert isinstance(body["client_id_issued_at"], int)
    assert body["registration_access_token"] != first
    assert_bearer_401(await kit.http.get(reg.uri, headers=bearer(first)))  # the old token is spent
    assert (await reg.get()).status_code == 200  # the new one works (and rotates again)


async def test_only_the_digest_of_the_token_is_stored(kit: Kit, client: TestClient, reg: Registration) -> None:
    record = await kit.store.clients.get(client.client_id)
    assert record is not None and record.registration_token_hash
    assert reg.token not in str(record)


async def test_concurrent_uses_of_one_token_succeed_once(kit: Kit, reg: Registration) -> None:
    results = await asyncio.gather(*(kit.http.get(reg.uri, headers=bearer(reg.token)) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 401, 401, 401, 401]


# --- S70 update -----------------------------------------------------------------------------------------


async def test_update_replaces_the_registration(kit: Kit, reg: Registration) -> None:
    body = reg.update_body(logo_uri=None, client_name="Renamed App", contacts=["ops@rp.example"])
    r = await reg.put(body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["client_name"] == "Renamed App" and got["contacts"] == ["ops@rp.example"]
    assert "logo_uri" not in got, "members left out are removed (RFC 7592 §2.2: replace, not augment)"
    again = (await reg.get()).json()
    assert "logo_uri" not in again and again["client_name"] == "Renamed App"


@pytest.mark.parametrize(
    "member", ["registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at"]
)
async def test_update_with_a_forbidden_member_is_refused(kit: Kit, reg: Registration, member: str) -> None:
    token = reg.token
    r = await reg.put(reg.update_body(**{member: 0}, client_name="Changed"))
    assert_json_error(r, "invalid_request")
    assert reg.token == token, "a refused update does not consume the token"
    assert (await reg.get()).json()["client_name"] == "Managed App", "nothing changed"


@pytest.mark.parametrize("client_id", [None, "someone-else"])
async def test_update_needs_the_same_client_id(kit: Kit, reg: Registration, client_id: str | None) -> None:
    body = reg.update_body(client_name="Changed")
    body.pop("client_id")
    if client_id is not None:
        body["client_id"] = client_id
    assert_json_error(await reg.put(body), "invalid_request")


async def test_update_checks_a_presented_client_secret(kit: Kit) -> None:
    secret_client = await kit.add_client(
        risk_tier="baseline", token_endpoint_auth_method="client_secret_post", jwks=None
    )
    reg = Registration(kit, secret_client.metadata)
    assert_json_error(await reg.put(reg.update_body(client_secret="wrong")), "invalid_request")
    r = await reg.put(reg.update_body(client_secret=secret_client.secret, client_name="Still Secret"))
    assert r.status_code == 200, r.text
    assert "client_secret" not in r.json(), "the stored secret is a digest: never sent again"


async def test_update_validates_like_registration(kit: Kit, reg: Registration) -> None:
    r = await reg.put(reg.update_body(redirect_uris=["http://rp.example/cb"]))
    assert_json_error(r, "invalid_redirect_uri")
    r = await reg.put(reg.update_body(jwks={"keys": [generate_jwk("ES256").private_dict()]}))
    assert_json_error(r, "invalid_client_metadata")
    assert (await reg.get()).json()["redirect_uris"] == [REDIRECT]


async def test_update_keeps_the_tier_and_validates_under_it(kit: Kit) -> None:
    high = await kit.add_client(risk_tier="high", response_modes=["jwt"])
    reg = Registration(kit, high.metadata)
    assert_json_error(await reg.put(reg.update_body(risk_tier="baseline")), "invalid_client_metadata")
    body = reg.update_body(token_endpoint_auth_method="client_secret_basic", jwks=None)
    body.pop("risk_tier")
    got = assert_json_error(await reg.put(body), "invalid_client_metadata")
    assert "high" in got["error_description"], "validated under the client's own tier"
    body = reg.update_body(client_name="High App")
    body.pop("risk_tier")
    r = await reg.put(body)
    assert r.status_code == 200, r.text
    assert r.json()["risk_tier"] == "high" and r.json()["require_pushed_authorization_requests"] is True


async def test_administrative_members_cannot_be_granted(kit: Kit, reg: Registration) -> None:
    r = await reg.put(reg.update_body(resource_server=True))
    assert_json_error(r, "invalid_client_metadata")
    r = await reg.put(reg.update_body(owner="someone else"))
    assert_json_error(r, "invalid_client_metadata")
    r = await kit.http.post(
        "/register",
        json={"redirect_uris": [REDIRECT], "resource_server": True, "token_endpoint_auth_method": "client_secret_basic"},
        headers=bearer("initial-token"),
    )
    got = assert_json_error(r, "invalid_client_metadata")
    assert "administrator" in got["error_description"]


async def test_administrative_members_are_kept_when_left_out(kit: Kit) -> None:
    c = await kit.add_client(risk_tier="elevated", owner="team-payments", client_kind="first-party")
    reg = Registration(kit, c.metadata)
    body = reg.update_body(client_name="Kept")
    for name in ("risk_tier", "owner", "client_kind"):
        body.pop(name)
    got = (await reg.put(body)).json()
    assert (got["risk_tier"], got["owner"], got["client_kind"]) == ("elevated", "team-payments", "first-party")


async def test_update_applies_to_the_next_request_at_once(kit: Kit, client: TestClient, reg: Registration) -> None:
    """The server's client cache is invalidated: a new redirect URI works on the very next request."""
    new_redirect = "http://127.0.0.1:9999/other"
    params, _ = plain_request(client, redirect_uri=new_redirect)
    r = await kit.authorize(params)
    assert_error_page(r, "invalid_request")
    assert (await reg.put(reg.update_body(redirect_uris=[REDIRECT, new_redirect]))).status_code == 200
    params, _ = plain_request(client, redirect_uri=new_redirect)
    r = await kit.authorize(params)
    assert r.status_code == 303 and r.headers["location"].startswith(new_redirect)


async def test_key_rotation_takes_effect_immediately(kit: Kit, client: TestClient, reg: Registration) -> None:
    old_key, new_key = client.key, generate_jwk("ES256", kid="rotated-2")
    ro, _ = client.request_object()
    assert (await kit.par(client, {"request": ro, "client_id": client.client_id})).status_code == 201
    old_kid = old_key.kid
    r = await reg.put(reg.update_body(jwks={"keys": [new_key.public_dict()]}))
    assert r.status_code == 200, r.text
    assert [k["kid"] for k in r.json()["jwks"]["keys"]] == ["rotated-2"]

    # the old key no longer signs request objects or client assertions
    ro, _ = client.request_object()
    r = await kit.par(client, {"request": ro, "client_id": client.client_id})
    assert_json_error(r, "invalid_client", 401)
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": client.assertion(key=new_key),
            "request": client.request_object(key=old_key)[0], "client_id": client.client_id}
    assert_json_error(await kit.http.post("/par", data=form), "invalid_request_object")
    # the new key does, at once
    client.key = new_key
    result = await kit.full_flow(client)
    assert result["token"].status_code == 200, result["token"].text

    keys = {k.kid: k for k in await kit.store.client_key_history.list_for_client(client.client_id)}
    assert keys[old_kid].removed_at is not None and keys["rotated-2"].removed_at is None


async def test_key_first_seen_survives_updates(kit: Kit, client: TestClient, reg: Registration, clock: Any) -> None:
    before = {k.thumbprint: k.first_seen_at for k in await kit.store.client_key_history.list_for_client(client.client_id)}
    clock.advance(3600)
    new_key = generate_jwk("ES256", kid="second")
    keys = [client.key.public_dict(), new_key.public_dict()]
    assert (await reg.put(reg.update_body(jwks={"keys": keys}))).status_code == 200
    after = {k.thumbprint: k for k in await kit.store.client_key_history.list_for_client(client.client_id)}
    assert after[client.key.thumbprint()].first_seen_at == before[client.key.thumbprint()]
    assert after[new_key.thumbprint()].first_seen_at == before[client.key.thumbprint()] + 3600


async def test_switching_to_a_secret_method_issues_a_secret(kit: Kit) -> None:
    c = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=[],
                             scope="profile")
    reg = Registration(kit, c.metadata)
    r = await reg.put(reg.update_body(token_endpoint_auth_method="client_secret_post", jwks=None))
    assert r.status_code == 200, r.text
    secret = r.json()["client_secret"]
    assert r.json()["client_secret_expires_at"] == 0
    t = await kit.http.post("/token", data={"grant_type": "client_credentials", "client_id": c.client_id,
                                            "client_secret": secret})
    assert t.status_code == 200, t.text


async def test_update_is_audited(kit: Kit, client: TestClient, reg: Registration) -> None:
    await reg.put(reg.update_body(client_name="Audited"))
    events = await kit.store.audit.list(target=f"client:{client.client_id}")
    assert [e.action for e in events][:2] == ["client.update", "client.register"]
    assert events[0].actor == f"client:{client.client_id}" and "client_name" in events[0].details["changed"]


async def test_client_ids_with_reserved_characters(kit: Kit) -> None:
    c = await register(kit.env, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"},
                       client_id="urn:example:app/one two")
    assert c["registration_client_uri"].endswith("/register/urn%3Aexample%3Aapp%2Fone%20two")
    reg = Registration(kit, c)
    r = await reg.get()
    assert r.status_code == 200 and r.json()["client_id"] == "urn:example:app/one two"


# --- S72 delete -----------------------------------------------------------------------------------------


async def test_delete_offboards_the_client(kit: Kit, client: TestClient, reg: Registration) -> None:
    rs = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_post", jwks=None,
                              resource_server=True)
    tokens = (await kit.full_flow(client))["token"].json()
    r = await reg.delete()
    assert r.status_code == 204 and r.content == b""

    assert_bearer_401(await kit.http.get(reg.uri, headers=bearer(reg.token)))
    assert_bearer_401(await kit.http.delete(reg.uri, headers=bearer(reg.token)))
    for token in (tokens["access_token"], tokens["refresh_token"]):
        r = await kit.http.post("/introspect", data={**rs.auth_form(), "token": token})
        assert r.json() == {"active": False}
    r = await kit.token(client, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert_json_error(r, "invalid_client", 401)
    ro, _ = client.request_object()
    assert_json_error(await kit.par(client, {"request": ro, "client_id": client.client_id}), "invalid_client", 401)
    params, _ = plain_request(client)
    assert_error_page(await kit.authorize(params), "invalid_client")

    record = await kit.store.clients.get(client.client_id)
    assert record is not None and record.disabled_by == f"client:{client.client_id}"
    assert record.registration_token_hash is None
    grants = await kit.store.grants.list_for_client(client.client_id)
    assert grants and all(g.revoked_at is not None for g in grants)
    with pytest.raises(Exception, match="already registered"):
        await register(kit.env, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"},
                       client_id=client.client_id)

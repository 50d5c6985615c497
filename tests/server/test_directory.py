"""The client directory (server/directory.py): a change made by another worker applies to the next request.

Two servers (two "workers") share one store; a change goes through one of them (or straight to the store, as
the CLI does) and the *other* one, which has the client parsed in its cache and is never told, must act on it
at once: no cache lifetime to wait out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jarmor.governance.lifecycle import offboard
from jarmor.jose import generate_jwk
from jarmor.server.directory import ClientDirectory
from jarmor.store.base import ClientRecord
from tests.kit import Kit, TestClient, make_kit

from .support import assert_json_error


@pytest.fixture
async def other(kit: Kit) -> AsyncIterator[Kit]:
    """A second worker on the same store."""
    k = await make_kit(store=kit.store)
    try:
        yield k
    finally:
        await k.http.aclose()


@pytest.fixture
async def app(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


async def par(kit: Kit, client: TestClient) -> httpx.Response:
    ro, _ = client.request_object()
    return await kit.par(client, {"request": ro, "client_id": client.client_id})


async def test_a_client_offboarded_elsewhere_is_refused_by_the_next_request(
    kit: Kit, other: Kit, app: TestClient
) -> None:
    first = await kit.full_flow(app)  # the client is now parsed and cached by ``kit``'s directory
    assert first["token"].status_code == 200
    await offboard(other.store, app.client_id, reason="vendor compromised", by="cli:root", now=kit.env.now())

    assert_json_error(await par(kit, app), "invalid_client", 401)
    refresh = {"grant_type": "refresh_token", "refresh_token": first["token"].json()["refresh_token"]}
    assert_json_error(await kit.token(app, refresh), "invalid_client", 401)


async def test_keys_replaced_through_another_worker_refuse_the_old_key_at_once(kit: Kit, other: Kit) -> None:
    """RFC 7592 PUT on one worker; the other refuses the replaced key on its next request, even when the
    client replaces its keys twice within one second (``updated_at`` is the version: it must still move)."""
    app = await kit.add_client(risk_tier="baseline")
    uri, token = app.metadata["registration_client_uri"], app.metadata["registration_access_token"]
    assert (await par(kit, app)).status_code == 201

    body = {k: v for k, v in app.metadata.items() if k not in (
        "registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at")}
    for kid in ("second", "third"):
        new_key = generate_jwk("ES256", kid=kid)
        body["jwks"] = {"keys": [new_key.public_dict()]}
        r = await other.http.put(uri, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        token = r.json()["registration_access_token"]
        assert_json_error(await par(kit, app), "invalid_client", 401)  # the replaced key, on the other worker
        app.key = new_key
        assert (await par(kit, app)).status_code == 201, kid
    record = await kit.store.clients.get(app.client_id)
    assert record is not None and record.updated_at >= record.created_at + 2


class CountingClients:
    """A ClientStore that counts full reads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gets = 0

    async def get(self, client_id: str) -> ClientRecord | None:
        self.gets += 1
        rec: ClientRecord | None = await self.inner.get(client_id)
        return rec

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_an_unchanged_client_is_parsed_once_and_then_only_its_version_is_read(kit: Kit, app: TestClient) -> None:
    counting = CountingClients(kit.store.clients)
    directory = ClientDirectory(counting)
    first = await directory.get(app.client_id)
    for _ in range(50):
        assert await directory.get(app.client_id) is first
    assert counting.gets == 1

    await kit.store.clients.disable(app.client_id, at=kit.env.now(), reason="x", by="cli:root")
    client = await directory.get(app.client_id)
    assert client is not None and client.disabled and counting.gets == 2
    assert await directory.get("no-such-client") is None


@dataclass
class _Gone:
    """A store whose client disappears between the version read and the full read."""

    record: ClientRecord

    async def state(self, client_id: str) -> tuple[int, int | None] | None:
        return (self.record.updated_at, None)

    async def get(self, client_id: str) -> ClientRecord | None:
        return None


async def test_a_client_deleted_between_the_two_reads_is_unknown(kit: Kit, app: TestClient) -> None:
    rec = await kit.store.clients.get(app.client_id)
    assert rec is not None
    assert await ClientDirectory(_Gone(rec)).get(app.client_id) is None  # type: ignore[arg-type]

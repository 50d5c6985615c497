"""The client directory (server/directory.py): a change made by another worker applies to the next request.

Two servers (two "workers") share one store; a change goes through one of them (or straight to the store, as
the CLI does) and the *other* one, which has the client parsed in its cache and is never told, must act on it
at once: no cache lifetime to wait out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jarmor.governance.lifecycle import offboard
from jarmor.jose import generate_jwk
from jarmor.server.directory import CachedClientDirectory
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
    directory = CachedClientDirectory(counting)
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
    changes: None = None

    async def state(self, client_id: str) -> tuple[int, int | None] | None:
        return (self.record.updated_at, None)

    async def get(self, client_id: str) -> ClientRecord | None:
        return None


async def test_a_client_deleted_between_the_two_reads_is_unknown(kit: Kit, app: TestClient) -> None:
    rec = await kit.store.clients.get(app.client_id)
    assert rec is not None
    assert await CachedClientDirectory(_Gone(rec)).get(app.client_id) is None  # type: ignore[arg-type]


# --- with a change feed (PostgreSQL LISTEN/NOTIFY) -----------------------------------------------------------


class FakeFeed:
    def __init__(self) -> None:
        self.on_change: Callable[[str], None] | None = None
        self.on_live: Callable[[bool], None] | None = None

    def start(self, on_change: Callable[[str], None], on_live: Callable[[bool], None]) -> None:
        self.on_change, self.on_live = on_change, on_live

    async def close(self) -> None:
        return None


class FedClients(CountingClients):
    def __init__(self, inner: Any, feed: FakeFeed) -> None:
        super().__init__(inner)
        self.changes = feed
        self.states = 0
        self.during_get: Callable[[], None] | None = None

    async def state(self, client_id: str) -> tuple[int, int | None] | None:
        self.states += 1
        got: tuple[int, int | None] | None = await self.inner.state(client_id)
        return got

    async def get(self, client_id: str) -> ClientRecord | None:
        rec = await super().get(client_id)
        if self.during_get is not None:
            self.during_get()
        return rec


async def test_with_a_live_feed_lookups_read_nothing_until_a_change_is_announced(kit: Kit, app: TestClient) -> None:
    feed = FakeFeed()
    clients = FedClients(kit.store.clients, feed)
    directory = CachedClientDirectory(clients)
    await directory.get(app.client_id)  # starts the feed; not live yet: version read per lookup
    assert feed.on_live is not None and feed.on_change is not None and not directory.live
    await directory.get(app.client_id)
    assert clients.states == 2

    feed.on_live(True)
    first = await directory.get(app.client_id)
    for _ in range(20):
        assert await directory.get(app.client_id) is first
    assert (clients.states, clients.gets) == (2, 2), "live: one read after going live, then none"

    await kit.store.clients.disable(app.client_id, at=kit.env.now(), reason="x", by="cli:root")
    feed.on_change(app.client_id)
    client = await directory.get(app.client_id)
    assert client is not None and client.disabled

    feed.on_live(False)  # a change may have been missed: back to reading the version on every lookup
    before = clients.states
    await directory.get(app.client_id)
    await directory.get(app.client_id)
    assert clients.states == before + 2


async def test_a_change_announced_during_a_read_is_not_cached(kit: Kit, app: TestClient) -> None:
    """The notification can arrive while the record is being read: that (possibly old) record is used for
    this lookup only, never kept."""
    feed = FakeFeed()
    clients = FedClients(kit.store.clients, feed)
    directory = CachedClientDirectory(clients)
    await directory.get("nobody")
    assert feed.on_live is not None and feed.on_change is not None
    feed.on_live(True)
    on_change = feed.on_change
    clients.during_get = lambda: on_change(app.client_id)
    await directory.get(app.client_id)
    await directory.get(app.client_id)
    assert clients.gets == 2
    clients.during_get = None
    # the same while not live (a read that straddles the feed going live)
    feed.on_live(False)
    on_live = feed.on_live
    clients.during_get = lambda: on_live(True)
    await directory.get(app.client_id)
    clients.during_get = None
    gets = clients.gets
    await directory.get(app.client_id)
    assert clients.gets == gets + 1, "read before the feed went live: not trusted"


@pytest.mark.postgres
async def test_postgresql_announces_changes_and_the_feed_recovers_from_a_lost_connection(kit: Kit) -> None:
    from jarmor.store import SqlStore
    from jarmor.store.sql.postgres import PostgresChanges
    from tests.store import services

    async def until(condition: Callable[[], Awaitable[bool]]) -> None:
        deadline = asyncio.get_running_loop().time() + 20
        while not await condition():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.01)

    with services.postgres_schema() as url:
        node_a, node_b = SqlStore.open(url), SqlStore.open(url)
        try:
            for cid in ("c1", "c2"):
                await node_b.clients.create(ClientRecord(cid, {**METADATA}, 1, 1))
            directory = CachedClientDirectory(node_a.clients)
            assert (await directory.get("c1")) is not None

            async def live() -> bool:
                return directory.live

            await until(live)
            feed = node_a.clients.changes
            assert isinstance(feed, PostgresChanges)
            await directory.get("c1")
            await node_b.clients.disable("c1", at=2, reason="compromised", by="cli:root")

            async def c1_disabled() -> bool:
                client = await directory.get("c1")
                return client is not None and client.disabled

            await until(c1_disabled)

            # the listening connection dies: the directory stops trusting its cache, then the feed is back
            async with node_b._db.transaction() as tx:  # type: ignore[attr-defined]
                from sqlalchemy import func, select

                await tx.first(select(func.pg_terminate_backend(feed.backend_pid)), {})

            async def not_live() -> bool:
                return not directory.live

            await until(not_live)
            await until(live)
            cached = await directory.get("c2")
            assert cached is not None and await directory.get("c2") is cached
            await node_b.clients.disable("c2", at=3, reason="compromised", by="cli:root")

            async def c2_disabled() -> bool:
                client = await directory.get("c2")
                return client is not None and client.disabled

            await until(c2_disabled)
        finally:
            await node_a.close()
            await node_b.close()


METADATA: dict[str, Any] = {
    "redirect_uris": ["https://rp.example/cb"],
    "token_endpoint_auth_method": "none",
    "risk_tier": "baseline",
}

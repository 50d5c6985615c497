"""The token endpoint writes what it issues in one durable transaction (``Store.transaction``), on every store.

* a code redeemed by many concurrent requests: exactly one succeeds; the code and its "used" mark change
  places atomically (``take_and_mark``), so every other request finds the mark, and the replay revokes the
  winner's grant and tokens (RFC 6749 §4.1.2);
* concurrent refreshes with one refresh token: it rotates exactly once, and the new access token exists only
  with the rotation (they commit together);
* a transaction that fails part-way leaves nothing behind (no grant without its tokens), and the client gets
  ``server_error`` (a store error) or ``temporarily_unavailable`` (the store is unreachable), never tokens.

Run on the in-memory store, an SQLite file, and — when ``JARMOR_TEST_POSTGRES_URL`` /
``JARMOR_TEST_REDIS_URL`` are set — PostgreSQL and PostgreSQL with Redis for the short-lived records.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from jarmor.server.app import build_routes
from jarmor.server.problems import exception_handlers
from jarmor.store import Store, open_store
from jarmor.store.base import GrantRecord, StoreError, StoreTransaction, StoreUnavailable, TokenRecord
from tests.kit import ISSUER, Clock, Kit, TestClient
from tests.store import services

from .conftest import KitFactory
from .support import assert_json_error, code_from, plain_request, redeem

KINDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
]


@contextlib.contextmanager
def store_urls(kind: str, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'jarmor.db'}", None
        return
    with services.postgres_schema() as url:
        if kind == "postgres":
            yield url, None
            return
        with services.redis_prefix() as (redis_url, _prefix):
            yield url, redis_url


@pytest.fixture(params=KINDS)
async def kit(request: pytest.FixtureRequest, make: KitFactory, clock: Clock, tmp_path: Path) -> AsyncIterator[Kit]:
    if request.param == "memory":
        yield await make()
        return
    with store_urls(request.param, tmp_path) as (url, redis_url):
        store = open_store(url, redis_url, clock=clock)
        try:
            yield await make(store=store)
        finally:
            await store.close()


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


async def obtain_code(kit: Kit, client: TestClient) -> tuple[str, str]:
    params, verifier = plain_request(client)
    return code_from(kit, client, await kit.authorize(params))["code"], verifier


def store_of(kit: Kit) -> Store:
    store: Store = kit.server.store
    return store


async def client_tokens(kit: Kit, client: TestClient) -> list[TokenRecord]:
    return await store_of(kit).tokens.list_for_client(client.client_id)


async def client_grants(kit: Kit, client: TestClient) -> list[GrantRecord]:
    return await store_of(kit).grants.list_for_client(client.client_id)


async def test_concurrent_redemptions_one_winner_every_loser_sees_the_mark(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    results = await asyncio.gather(*(redeem(kit, base, code, verifier) for _ in range(12)))
    assert sum(r.status_code == 200 for r in results) == 1
    for r in results:
        if r.status_code != 200:
            assert_json_error(r, "invalid_grant")
            assert "already been used" in r.json()["error_description"], r.json()
    # the replays revoked what the winner issued, whichever committed first
    tokens = await client_tokens(kit, base)
    assert {t.kind for t in tokens} == {"access_token", "refresh_token"}
    assert all(t.revoked_at is not None for t in tokens)
    grants = await client_grants(kit, base)
    assert len(grants) == 1 and grants[0].revoked_at is not None


async def test_concurrent_refreshes_rotate_once(kit: Kit, base: TestClient) -> None:
    """One refresh token presented by 10 concurrent requests: it rotates exactly once, and the rotation's
    access token exists only with it (one transaction). At most one request succeeds: a request that reads
    the token after the rotation committed is a reuse (RFC 9700 §4.14.2) and revokes the grant, which can also
    fail the winner's own last check (``protocol/standing.py``) — never more than one success."""
    code, verifier = await obtain_code(kit, base)
    first = await redeem(kit, base, code, verifier)
    assert first.status_code == 200, first.text
    rt = first.json()["refresh_token"]
    results = await asyncio.gather(
        *(kit.token(base, {"grant_type": "refresh_token", "refresh_token": rt}) for _ in range(10))
    )
    assert sum(r.status_code == 200 for r in results) <= 1
    for r in results:
        if r.status_code != 200:
            assert_json_error(r, "invalid_grant")
    # the redemption's access + refresh token, and exactly one rotation's
    tokens = await client_tokens(kit, base)
    assert sorted(t.kind for t in tokens) == ["access_token", "access_token", "refresh_token", "refresh_token"]
    rotated = [t for t in tokens if t.rotated_to is not None]
    assert len(rotated) == 1 and rotated[0].rotated_to in {t.token_hash for t in tokens}


class FailingTransaction:
    """Delegates to a real transaction, then fails on the first token (after the grant was written)."""

    def __init__(self, tx: StoreTransaction, failure: StoreError) -> None:
        self._tx = tx
        self._failure = failure

    async def create_grant(self, record: GrantRecord) -> None:
        await self._tx.create_grant(record)

    async def create_token(self, record: TokenRecord) -> None:
        await self._tx.create_token(record)
        raise self._failure

    async def rotate_token(self, old_hash: str, new: TokenRecord, now: int) -> bool:
        if not await self._tx.rotate_token(old_hash, new, now):
            return False
        raise self._failure

    async def touch_client(self, client_id: str, now: int) -> None:
        await self._tx.touch_client(client_id, now)


def fail_transactions(kit: Kit, monkeypatch: pytest.MonkeyPatch, failure: StoreError) -> None:
    store = store_of(kit)
    real = store.transaction

    @contextlib.asynccontextmanager
    async def failing() -> AsyncIterator[Any]:
        async with real() as tx:
            yield FailingTransaction(tx, failure)

    monkeypatch.setattr(store, "transaction", failing)


@pytest.mark.parametrize(
    ("failure", "status", "error"),
    [(StoreError("disk I/O error"), 500, "server_error"),
     (StoreUnavailable("the database is unreachable"), 503, "temporarily_unavailable")],
    ids=["store-error", "unreachable"],
)
async def test_a_failed_transaction_leaves_nothing_half_written(
    kit: Kit, base: TestClient, monkeypatch: pytest.MonkeyPatch, failure: StoreError, status: int, error: str
) -> None:
    code, verifier = await obtain_code(kit, base)
    rt_code, rt_verifier = await obtain_code(kit, base)
    refreshable = await redeem(kit, base, rt_code, rt_verifier)
    assert refreshable.status_code == 200, refreshable.text
    rt = refreshable.json()["refresh_token"]
    before = {t.token_hash for t in await client_tokens(kit, base)}
    grants_before = {g.grant_id for g in await client_grants(kit, base)}

    fail_transactions(kit, monkeypatch, failure)
    # the server's answer as a client sees it (a store error reaches the 500 handler, which re-raises it)
    app = Starlette(routes=build_routes(kit.server), exception_handlers=exception_handlers())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    monkeypatch.setattr(kit, "http", httpx.AsyncClient(transport=transport, base_url=ISSUER))
    r = await redeem(kit, base, code, verifier)
    assert r.status_code == status and r.json()["error"] == error, r.text
    assert "access_token" not in r.text
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": rt})
    assert r.status_code == status and r.json()["error"] == error, r.text

    # no grant without its tokens, no token of the failed redemption, the refresh token not rotated
    assert {g.grant_id for g in await client_grants(kit, base)} == grants_before
    assert {t.token_hash for t in await client_tokens(kit, base)} == before
    await kit.http.aclose()
    monkeypatch.undo()
    again = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": rt})
    assert again.status_code == 200, again.text

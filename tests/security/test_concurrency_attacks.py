"""Races on single-use values: the same code, request_uri, request-object jti, client-assertion jti and refresh
token presented by many concurrent requests succeed exactly once (RFC 6749 §4.1.2, RFC 9126 §4, RFC 7523 §3,
RFC 9700 §4.14.2; attack catalog A31, A42, A52, A57).

Every race runs against each store: the in-memory store, an SQLite file, and — when
``JARMOR_TEST_POSTGRES_URL`` / ``JARMOR_TEST_REDIS_URL`` are set — PostgreSQL and SQLite + Redis (short-lived
records in Redis). The multi-worker races run two servers, each with its own store connection and event
loop in its own thread, on one database: what ``jarmor serve --workers N`` does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from jarmor.server.app import JarmorServer, build_routes
from jarmor.store import Store, open_store
from tests.kit import ASSERTION_TYPE, ISSUER, REDIRECT, Kit, TestClient, make_kit
from tests.server.support import code_from, plain_request, push
from tests.store import services

TASKS = 50
KINDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]
SHARED_KINDS = KINDS[1:]


@contextmanager
def store_urls(kind: str, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(store URL, Redis URL or None) for ``kind``; PostgreSQL and Redis skip unless configured."""
    if kind == "memory":
        yield "memory://", None
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'race.db'}", None
    elif kind == "postgres":
        with services.postgres_schema() as url:
            yield url, None
    elif kind == "redis":
        with services.redis_prefix() as (url, _prefix):
            yield f"sqlite:///{tmp_path / 'race.db'}", url
    else:
        raise AssertionError(kind)


@dataclass
class Race:
    kit: Kit
    url: str
    redis_url: str | None


@asynccontextmanager
async def open_race(kind: str, tmp_path: Path) -> AsyncIterator[Race]:
    with store_urls(kind, tmp_path) as (url, redis_url):
        store = open_store(url, redis_url)
        kit = await make_kit(reuse_server_keys=True, store=store)
        try:
            yield Race(kit, url, redis_url)
        finally:
            await kit.http.aclose()
            await kit.server.stop()  # writes the queued flow records, then closes the store


@pytest.fixture(params=KINDS)
async def race(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Race]:
    async with open_race(request.param, tmp_path) as r:
        yield r


@pytest.fixture(params=SHARED_KINDS)
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Race]:
    async with open_race(request.param, tmp_path) as r:
        yield r


async def gather(n: int, make: Callable[[int], Awaitable[httpx.Response]]) -> list[httpx.Response]:
    return list(await asyncio.gather(*(make(i) for i in range(n))))


def successes(results: list[httpx.Response], status: int) -> int:
    return sum(r.status_code == status for r in results)


def assertion_form(client: TestClient) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": client.assertion()}


async def tokens_of(store: Store, client_id: str) -> int:
    return len(await store.tokens.list_for_client(client_id))


# --- one event loop, many tasks ---------------------------------------------------------------------------------


async def test_code_is_redeemed_once(race: Race) -> None:
    kit = race.kit
    client = await kit.add_client(risk_tier="baseline")
    params, verifier = plain_request(client)
    code = code_from(kit, client, await kit.authorize(params))["code"]
    forms = [
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
         **assertion_form(client)}
        for _ in range(TASKS)
    ]
    results = await gather(TASKS, lambda i: kit.http.post("/token", data=forms[i]))
    assert successes(results, 200) == 1, [r.status_code for r in results]
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)
    # the losers saw a used code: RFC 6749 §4.1.2 revokes what the winner got
    assert all(t.revoked_at is not None for t in await kit.store.tokens.list_for_client(client.client_id))


async def test_request_uri_is_used_once(race: Race) -> None:
    kit = race.kit
    client = await kit.add_client(risk_tier="baseline")
    uri, _ = await push(kit, client)
    results = await gather(TASKS, lambda _i: kit.authorize({"client_id": client.client_id, "request_uri": uri}))
    assert successes(results, 303) == 1
    assert all(r.status_code == 400 and "location" not in r.headers for r in results if r.status_code != 303)


async def test_request_object_is_used_once(race: Race) -> None:
    kit = race.kit
    client = await kit.add_client(risk_tier="baseline")
    ro, _ = client.request_object()
    results = await gather(TASKS, lambda _i: kit.authorize({"client_id": client.client_id, "request": ro}))
    codes = [r for r in results if "code=" in r.headers.get("location", "")]
    assert len(codes) == 1
    assert all("error=invalid_request_object" in r.headers["location"] for r in results if r not in codes)


async def test_request_object_is_pushed_once(race: Race) -> None:
    kit = race.kit
    client = await kit.add_client(risk_tier="baseline")
    ro, _ = client.request_object()
    forms = [{"request": ro, "client_id": client.client_id, **assertion_form(client)} for _ in range(TASKS)]
    results = await gather(TASKS, lambda i: kit.http.post("/par", data=forms[i]))
    assert successes(results, 201) == 1
    assert all(r.json()["error"] == "invalid_request_object" for r in results if r.status_code != 201)


async def test_client_assertion_is_accepted_once(race: Race) -> None:
    kit = race.kit
    machine = await kit.add_client(risk_tier="baseline", grant_types=["client_credentials"], redirect_uris=None)
    form = {"grant_type": "client_credentials", **assertion_form(machine)}
    results = await gather(TASKS, lambda _i: kit.http.post("/token", data=form))
    assert successes(results, 200) == 1
    assert all(r.status_code == 401 and r.json()["error"] == "invalid_client" for r in results if r.status_code != 200)
    assert await tokens_of(kit.store, machine.client_id) == 1


async def test_refresh_token_is_rotated_once(race: Race) -> None:
    kit = race.kit
    client = await kit.add_client(risk_tier="baseline")
    params, verifier = plain_request(client)
    code = code_from(kit, client, await kit.authorize(params))["code"]
    rt = (await kit.token(client, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                   "code_verifier": verifier})).json()["refresh_token"]
    forms = [{"grant_type": "refresh_token", "refresh_token": rt, **assertion_form(client)} for _ in range(TASKS)]
    results = await gather(TASKS, lambda i: kit.http.post("/token", data=forms[i]))
    # One request rotates the token; the others present it again, which is reuse: the grant is revoked
    # (RFC 9700 §4.14.2). The rotating request then either answered before that (its tokens are revoked with
    # the grant) or fails its re-check of the grant (protocol/standing.py): at most one 200, nothing usable.
    assert successes(results, 200) <= 1
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)
    now = int(kit.server.env.now())
    assert await kit.store.tokens.list_for_client(client.client_id, active_at=now) == []


# --- several workers on one database ---------------------------------------------------------------------------


async def _worker_client(race: Race) -> tuple[httpx.AsyncClient, JarmorServer]:
    store = open_store(race.url, race.redis_url)
    server = JarmorServer(race.kit.config, store)
    await server.start(keyring=race.kit.server.keyring)
    app = Starlette(routes=build_routes(server))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER), server


def run_workers(race: Race, workers: int, requests: list[tuple[str, str, dict[str, str]]]) -> list[tuple[int, str]]:
    """Split ``requests`` over ``workers`` threads, each its own server, store connection and event loop,
    released together by a barrier; return every (status, Location)."""
    barrier = threading.Barrier(workers)
    statuses: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    async def work(mine: list[tuple[str, str, dict[str, str]]]) -> None:
        http, server = await _worker_client(race)
        try:
            await asyncio.get_running_loop().run_in_executor(None, barrier.wait, 30)

            async def one(method: str, path: str, data: dict[str, str]) -> tuple[int, str]:
                if method == "GET":
                    r = await http.get(path, params=data)
                else:
                    r = await http.post(path, data=data)
                return r.status_code, r.headers.get("location", "")

            got = await asyncio.gather(*(one(*req) for req in mine))
            with lock:
                statuses.extend(got)
        finally:
            await http.aclose()
            await server.stop()  # writes the queued flow records, then closes the store

    def thread(mine: list[tuple[str, str, dict[str, str]]]) -> None:
        try:
            asyncio.run(work(mine))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=thread, args=(requests[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return statuses


async def test_workers_race_for_one_code_and_one_request_uri(shared: Race) -> None:
    kit = shared.kit
    client = await kit.add_client(risk_tier="baseline")
    params, verifier = plain_request(client)
    code = code_from(kit, client, await kit.authorize(params))["code"]
    redeem: list[tuple[str, str, dict[str, str]]] = [
        ("POST", "/token", {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                            "code_verifier": verifier, **assertion_form(client)})
        for _ in range(TASKS)
    ]
    statuses = [s for s, _ in await asyncio.to_thread(run_workers, shared, 2, redeem)]
    assert statuses.count(200) == 1 and statuses.count(400) == TASKS - 1, statuses

    uri, _ = await push(kit, client)
    visit = [("GET", "/authorize", {"client_id": client.client_id, "request_uri": uri}) for _ in range(TASKS)]
    statuses = [s for s, _ in await asyncio.to_thread(run_workers, shared, 2, visit)]
    assert statuses.count(303) == 1 and statuses.count(400) == TASKS - 1, statuses


async def test_workers_race_for_one_assertion_and_one_request_object(shared: Race) -> None:
    kit = shared.kit
    client = await kit.add_client(risk_tier="baseline", grant_types=["authorization_code", "client_credentials"])
    form: dict[str, Any] = {"grant_type": "client_credentials", **assertion_form(client)}
    statuses = [s for s, _ in await asyncio.to_thread(run_workers, shared, 2, [("POST", "/token", form)] * TASKS)]
    assert statuses.count(200) == 1 and statuses.count(401) == TASKS - 1, statuses

    ro, _ = client.request_object()
    visit = [("GET", "/authorize", {"client_id": client.client_id, "request": ro})] * TASKS
    results = await asyncio.to_thread(run_workers, shared, 2, visit)
    assert all(status == 303 for status, _ in results)  # the object's redirect_uri is registered
    assert sum("code=" in loc for _, loc in results) == 1
    assert sum("error=invalid_request_object" in loc for _, loc in results) == TASKS - 1

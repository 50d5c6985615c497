"""Request rate limits: per source address and per client (its tier's limit), counted atomically in the
short-lived store — under concurrency, across servers sharing a store, and only from trusted proxies' headers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from jarmor.protocol.context import Settings
from jarmor.protocol.policy import DEFAULT_TIERS, Policy
from jarmor.store import open_store
from tests.kit import ISSUER, Kit, TestClient, make_kit
from tests.store import services

from .conftest import KitFactory


def settings(per_address: int = 1000) -> Settings:
    return replace(Settings(), rate_limit_window=3600, rate_limit_per_address=per_address)


def policy(baseline_limit: int) -> Policy:
    tiers = dict(DEFAULT_TIERS)
    tiers["baseline"] = replace(tiers["baseline"], client_rate_limit=baseline_limit)
    return Policy(tiers=tiers)


async def par(kit: Kit, client: TestClient, http: httpx.AsyncClient | None = None, **headers: str) -> httpx.Response:
    ro, _ = client.request_object()
    return await (http or kit.http).post(
        "/par", data={**client.auth_form(), "request": ro, "client_id": client.client_id}, headers=headers
    )


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "temporarily_unavailable"
    assert 1 <= int(r.headers["retry-after"]) <= 3600
    assert r.headers["cache-control"] == "no-store"


async def test_the_address_limit_counts_each_endpoint(make: KitFactory) -> None:
    kit = await make(settings=settings(per_address=3))
    client = await kit.add_client()
    assert [(await par(kit, client)).status_code for _ in range(3)] == [201, 201, 201]
    assert_limited(await par(kit, client))
    r = await kit.http.post("/revoke", data={**client.auth_form(), "token": "x"})  # another endpoint's budget
    assert r.status_code == 200
    assert (await kit.http.get("/.well-known/openid-configuration")).status_code == 200  # not limited


async def test_the_client_limit_follows_its_tier_and_spares_other_clients(make: KitFactory) -> None:
    kit = await make(settings=settings(), policy=policy(baseline_limit=2))
    first, second = await kit.add_client(), await kit.add_client()
    assert [(await par(kit, first)).status_code for _ in range(3)][-1] == 429
    assert (await par(kit, second)).status_code == 201
    high = await kit.add_client(risk_tier="high", authorization_signed_response_alg="ES256")
    assert DEFAULT_TIERS["high"].client_rate_limit > 2
    assert (await par(kit, high)).status_code != 429


async def test_failed_authentication_in_a_clients_name_does_not_spend_its_budget(make: KitFactory) -> None:
    kit = await make(settings=settings(), policy=policy(baseline_limit=3))
    victim = await kit.add_client()
    attacker = await kit.add_client()
    for _ in range(10):  # assertions signed with the wrong key, naming the victim
        forged = TestClient(victim.client_id, attacker.key, "ES256", victim.metadata)
        r = await kit.http.post("/par", data={**forged.auth_form(), "client_id": victim.client_id})
        assert r.status_code == 401
    assert [(await par(kit, victim)).status_code for _ in range(3)] == [201, 201, 201]
    assert_limited(await par(kit, victim))


async def test_concurrent_requests_get_exactly_the_limit(make: KitFactory) -> None:
    kit = await make(settings=settings(), policy=policy(baseline_limit=5))
    client = await kit.add_client()
    statuses = [r.status_code for r in await asyncio.gather(*(par(kit, client) for _ in range(20)))]
    assert statuses.count(201) == 5 and statuses.count(429) == 15


async def test_forwarded_addresses_count_only_from_trusted_proxies(make: KitFactory) -> None:
    kit = await make(settings=settings(per_address=2))
    client = await kit.add_client()
    app: Any = kit.http._transport.app  # type: ignore[attr-defined]
    for trusted, expect_separate in ((["127.0.0.1"], True), (["10.0.0.0/8"], False)):
        proxied = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxied), base_url=ISSUER) as http:
            seen = []
            for n in range(3):
                r = await par(kit, client, http, **{"X-Forwarded-For": f"203.0.113.{n + 1}"})
                seen.append(r.status_code)
        if expect_separate:
            assert seen == [201, 201, 201]  # three client addresses, one request each
        else:
            assert 429 in seen  # the header of an untrusted peer is ignored: one address, over its limit


async def test_zero_window_turns_limits_off(make: KitFactory) -> None:
    kit = await make(settings=replace(Settings(), rate_limit_window=0, rate_limit_per_address=1),
                     policy=policy(baseline_limit=1))
    client = await kit.add_client()
    assert [(await par(kit, client)).status_code for _ in range(3)] == [201, 201, 201]


@pytest.mark.postgres
async def test_limits_hold_across_servers_sharing_redis() -> None:
    with services.postgres_schema() as pg, services.redis_prefix() as (redis, _prefix):
        kits = [  # the second node loads the key set the first one stored
            await make_kit(reuse_server_keys=first, store=open_store(pg, redis), settings=settings(),
                           policy=policy(baseline_limit=4))
            for first in (True, False)
        ]
        try:
            client = await kits[0].add_client()
            kits[1].clients[client.client_id] = client
            statuses = [(await par(kits[i % 2], client)).status_code for i in range(6)]
            assert statuses == [201, 201, 201, 201, 429, 429]
        finally:
            for kit in kits:
                await kit.store.close()


async def test_a_limited_request_body_is_parsed_once(make: KitFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-client limit reads the form to find the client; the endpoint reuses that parse
    (``http.keep_form``), and a body the limiter could not parse is still refused by the endpoint itself."""
    import jarmor.server.http as http_module

    parsed: list[int] = []
    real = http_module.parse_parameters

    def counting(raw: Any, **kw: Any) -> dict[str, str]:
        parsed.append(len(raw))
        return real(raw, **kw)

    monkeypatch.setattr(http_module, "parse_parameters", counting)
    kit = await make(settings=settings())
    client = await kit.add_client()
    assert (await par(kit, client)).status_code == 201
    assert len(parsed) == 1
    r = await kit.http.post("/par", content=b"client_id=a&client_id=b",
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"

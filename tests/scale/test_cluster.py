"""Two (then three) ``jarmor serve`` nodes sharing PostgreSQL and Redis, as behind a load balancer."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import httpx
import pytest

from jarmor.protocol.tokens import token_hash
from jarmor.store import open_store

from ..e2e.conftest import RunningServer
from .cluster import Cluster, Driver, bounded, http_client, register, url

pytestmark = [pytest.mark.scale, pytest.mark.postgres, pytest.mark.redis]



async def test_flows_split_across_nodes(cluster: Cluster) -> None:
    """PAR on A, authorize on B, token on A, refresh on B: every hop finds what the previous one stored."""
    a, b = cluster.nodes[:2]
    async with http_client() as http:
        jwks = [(await http.get(url(n, "/jwks"))).json() for n in (a, b)]
        assert jwks[0] == jwks[1] and jwks[0]["keys"], "both nodes publish the same server keys"
        driver = Driver(http, await register(http, a, cluster.issuer))
        for _ in range(5):
            pending = await driver.par(a)
            code = await driver.authorize(b, pending)
            assert code is not None
            tokens = await driver.token(a, pending, code)
            assert tokens is not None
            refreshed = await driver.refresh(b, tokens["refresh_token"])
            assert refreshed is not None and refreshed["access_token"] != tokens["access_token"]
            assert await driver.refresh(a, tokens["refresh_token"]) is None, "a rotated refresh token is spent"
        # a client registered on B is known to A at once
        other = Driver(http, await register(http, b, cluster.issuer))
        await other.flow(a, b, a)
        await other.flow(b, a, b)


async def test_double_redemptions_across_nodes(cluster: Cluster) -> None:
    """1,000 request_uris and 1,000 codes, each presented to both nodes at once: exactly one success each."""
    a, b = cluster.nodes[:2]
    n = 1000
    async with http_client() as http:
        drivers = [Driver(http, await register(http, node, cluster.issuer)) for node in (a, b, a, b)]
        uri_wins: list[int] = []
        code_wins: list[int] = []

        async def one(i: int) -> None:
            driver = drivers[i % len(drivers)]
            pending = await driver.par(a if i % 2 else b)
            codes = await asyncio.gather(driver.authorize(a, pending), driver.authorize(b, pending))
            won = [c for c in codes if c is not None]
            uri_wins.append(len(won))
            if not won:
                return
            # the same code to both nodes at once (reverse the order half the time)
            nodes = (a, b) if i % 4 < 2 else (b, a)
            results = await asyncio.gather(*(driver.token(node, pending, won[0]) for node in nodes))
            code_wins.append(sum(r is not None for r in results))

        started = time.monotonic()
        await bounded(24, *(one(i) for i in range(n)))
        elapsed = time.monotonic() - started
    print(f"{n} x (PAR + 2 concurrent authorize + 2 concurrent token) across 2 nodes in {elapsed:.1f} s")
    assert len(uri_wins) == n and set(uri_wins) == {1}, f"request_uri successes: {sorted(set(uri_wins))}"
    assert len(code_wins) == n and set(code_wins) == {1}, f"code successes: {sorted(set(code_wins))}"


async def test_node_killed_mid_load_loses_nothing(cluster: Cluster) -> None:
    """SIGKILL one of two loaded nodes: every client it registered and token it issued survives, and the
    other node keeps serving (including flows the dead node started)."""
    a = cluster.nodes[0]
    c = cluster.start_node()
    registered: list[tuple[str, str]] = []  # (node, client_id)
    issued: list[tuple[str, Driver, dict[str, Any]]] = []
    refused: list[str] = []
    served_after_kill: list[str] = []
    killed = asyncio.Event()
    on_c = [0]  # iterations (registration + PAR + authorize + token) in progress on the node to be killed

    def name(node: RunningServer) -> str:
        return "a" if node is a else "c"

    async with http_client() as http:
        victim_driver = Driver(http, await register(http, c, cluster.issuer))
        pushed_on_c = await victim_driver.par(c)

        async def worker(w: int) -> None:
            after_kill = 0
            for i in range(64):  # bounded; each worker stops once it has served twice after the kill
                if killed.is_set():
                    after_kill += 1
                    if after_kill > 2:
                        return
                node = a if killed.is_set() or (w + i) % 2 == 0 else c
                on_c[0] += node is c
                try:
                    client = await register(http, node, cluster.issuer)
                    registered.append((name(node), client.client_id))
                    driver = Driver(http, client)
                    tokens = await driver.flow(node, node, node)
                    issued.append((name(node), driver, tokens))
                    if killed.is_set() and node is a:
                        served_after_kill.append(client.client_id)
                except httpx.TransportError:
                    assert node is c, "only the killed node may fail"
                    refused.append(name(node))
                finally:
                    on_c[0] -= node is c

        async def killer() -> None:
            # kill under load: after ten flows on c, at a moment when at least two iterations are under way on
            # it (checked and killed without yielding to them), so at least one has a request still to send
            deadline = time.monotonic() + 120
            while sum(1 for n, _d, _t in issued if n == "c") < 10 or on_c[0] < 2:
                assert time.monotonic() < deadline, "the load never reached the node to kill"
                await asyncio.sleep(0.005)
            os.kill(c.process.pid, signal.SIGKILL)
            killed.set()

        await asyncio.gather(killer(), *(worker(w) for w in range(16)))
        assert c.process.wait(10) == -signal.SIGKILL
        assert refused, "the kill landed while requests were in flight"
        assert served_after_kill, "the surviving node served after the kill"

        # the surviving node completes a flow the dead node started, and refreshes what the dead node issued
        code = await victim_driver.authorize(a, pushed_on_c)
        assert code is not None and await victim_driver.token(a, pushed_on_c, code) is not None
        from_c = [(d, t) for n, d, t in issued if n == "c"]
        assert from_c
        for driver, tokens in from_c[:5]:
            refreshed = await driver.refresh(a, tokens["refresh_token"])
            assert refreshed is not None, "a refresh token issued by the killed node works on the survivor"

    store = open_store(cluster.database, cluster.redis)
    try:
        for _node, client_id in registered:
            assert await store.clients.get(client_id) is not None, f"client {client_id} lost"
        for _node, _driver, tokens in issued:
            for kind in ("access_token", "refresh_token"):
                assert await store.tokens.get(token_hash(tokens[kind])) is not None, f"{kind} lost"
    finally:
        await store.close()
    print(
        f"registered {len(registered)} clients and issued {len(issued)} token sets "
        f"({len(from_c)} by the killed node); {len(refused)} requests hit the dead node"
    )

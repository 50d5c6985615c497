"""Flow integrity records written by two nodes (PostgreSQL + Redis) into one hash chain: every transaction's hops,
split across the nodes, form one row per flow, and the chain the concurrent appenders built verifies."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from jarmor.governance.chain import verify
from jarmor.governance.query import FlowQuery, find_flows
from jarmor.store import open_store

from .cluster import Cluster, Driver, bounded, http_client, register

pytestmark = [pytest.mark.scale, pytest.mark.postgres, pytest.mark.redis]

FLOWS = 60


async def test_one_chain_across_nodes(cluster: Cluster) -> None:
    a, b = cluster.nodes[:2]
    async with http_client() as http:
        driver = Driver(http, await register(http, a, cluster.issuer))
        # PAR and token on one node, authorization on the other, alternating, 16 at a time
        await bounded(16, *(driver.flow(*((a, b, a) if i % 2 else (b, a, b))) for i in range(FLOWS)))
    store = open_store(cluster.database)
    try:
        deadline = time.monotonic() + 20
        while True:
            flows = await find_flows(store.flows, FlowQuery(client_id=driver.client.client_id, limit=1000),
                                     int(time.time()))
            if sum(f.outcome == "success" for f in flows) >= FLOWS or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert len(flows) == FLOWS and {f.outcome for f in flows} == {"success"}
        assert {tuple(h.stage for h in f.hops) for f in flows} == {("par", "code", "token")}
        report = await verify(store.flows)
        assert report.ok, [str(p) for p in report.problems]
        rows = await store.flows.scan(limit=10_000)
        nodes: dict[str, set[str]] = {}
        for row in rows:
            nodes.setdefault(row.flow_id, set()).add(orjson.loads(row.body)["node"])
        assert all(len(n) == 2 for fid, n in nodes.items() if fid in {f.flow_id for f in flows})
        assert len({n for ns in nodes.values() for n in ns}) == 2  # both nodes appended to the one chain
    finally:
        await store.close()

"""Offboarding from another process while flows of the client are in flight on every worker / node.

``jarmor clients offboard`` runs as its own process while eight concurrent loops drive complete flows (PAR,
authorization, token) of the client, each hop on another worker (``--workers 2`` on SQLite) or node (two
nodes on PostgreSQL + Redis). The offboarding commits before the command exits, so:

* no request *sent* after the commit (after the test's own process first reads the client as disabled, a
  few ms after the commit) gets a code or tokens: a flow that starts then fails at PAR (on PostgreSQL, where
  the nodes learn of the change by notification, PAR may pass for those milliseconds and the flow fails
  when the code is issued);
* a flow in flight either completed (its hops succeeded before the commit) or fails — never a code or token
  from a request sent after the commit; and every token the client ever got is inactive afterwards;
* the flow records agree with what the driver saw: as many ``tokens_issued`` records as token responses with
  tokens, and the refusals recorded as ``invalid_client`` because the client is disabled.

Events are ordered by the driver's monotonic clock (sent before / after the command exited), never timed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from jarmor.governance.records import TOKENS_ISSUED
from jarmor.protocol.tokens import token_hash
from jarmor.store import Store, open_store

from ..e2e.conftest import RunningServer, start_server, stop_server
from ..kit import TestClient, response_params
from .cluster import Cluster, http_client, register, url

pytestmark = pytest.mark.scale

LOOPS = 8
AFTER = 3  # each loop runs this many flows that start after the offboarding command exited


@dataclass
class Hop:
    name: str
    sent: float
    status: int
    ok: bool  # a request_uri, a code or tokens


@dataclass
class Flow:
    hops: list[Hop] = field(default_factory=list)
    tokens: dict[str, Any] | None = None


def _payload(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


async def _flow(http: httpx.AsyncClient, client: TestClient, nodes: list[RunningServer], i: int) -> Flow:
    flow = Flow()
    ro, ctx = client.request_object()
    sent = time.monotonic()
    r = await http.post(url(nodes[i % 2], "/par"), data={**client.auth_form(), "request": ro,
                                                         "client_id": client.client_id})
    flow.hops.append(Hop("par", sent, r.status_code, r.status_code == 201))
    if r.status_code != 201:
        assert (r.status_code, r.json()["error"]) == (401, "invalid_client"), r.text
        return flow
    params = {"client_id": client.client_id, "request_uri": r.json()["request_uri"]}
    sent = time.monotonic()
    r = await http.get(url(nodes[(i + 1) % 2], "/authorize"), params=params)
    if r.status_code not in (302, 303):
        assert r.status_code == 400 and "invalid_client" in r.text, r.text[:300]
        flow.hops.append(Hop("authorize", sent, r.status_code, False))
        return flow
    got = response_params(r)
    if "response" in got:
        got = _payload(got["response"])
    assert "code" in got, got
    flow.hops.append(Hop("authorize", sent, r.status_code, True))
    form = {**client.auth_form(), "grant_type": "authorization_code", "code": got["code"],
            "redirect_uri": ctx["redirect_uri"], "code_verifier": ctx["code_verifier"]}
    sent = time.monotonic()
    r = await http.post(url(nodes[i % 2], "/token"), data=form)
    flow.hops.append(Hop("token", sent, r.status_code, r.status_code == 200))
    if r.status_code == 200:
        flow.tokens = r.json()
    else:
        assert (r.status_code, r.json()["error"]) == (401, "invalid_client"), r.text
    return flow


async def offboarding_race(
    nodes: list[RunningServer], issuer: str, database: str, workdir: Path, *, announced: bool
) -> None:
    """``announced``: the servers learn of client changes from PostgreSQL notifications, so a request that
    issues nothing (PAR) may still pass for the milliseconds the notification takes; codes and tokens never."""
    store = open_store(database)
    try:
        async with http_client() as http:
            client = await register(http, nodes[0], issuer)
            flows, started, committed = await _race(http, store, client, nodes, database, workdir)
        # the race happened: flows were in flight while the command ran, and flows started after the commit
        assert any(f.hops[0].sent < committed and f.hops[-1].sent > started for f in flows)
        assert sum(1 for f in flows if f.hops[0].sent > committed) >= LOOPS * AFTER
        for f in flows:
            for hop in f.hops:
                if hop.sent > committed and not (announced and hop.name == "par"):
                    assert not hop.ok, f"{hop.name} sent after the offboarding committed succeeded: {f}"
        issued = [f.tokens for f in flows if f.tokens is not None]
        await _check_records(store, client, issued)
    finally:
        await store.close()


async def _race(
    http: httpx.AsyncClient, store: Store, client: TestClient, nodes: list[RunningServer], database: str,
    workdir: Path,
) -> tuple[list[Flow], float, float]:
    """Flows in LOOPS concurrent loops; once they are warm, offboard from another process. Returns the flows,
    when the command started and when this process first saw the client disabled (after the commit)."""
    flows: list[Flow] = []
    warm = asyncio.Event()
    committed: list[float] = []
    started_after = [0] * LOOPS

    async def loop(n: int) -> None:
        i = n
        while started_after[n] < AFTER:
            flow = await _flow(http, client, nodes, i)
            flows.append(flow)
            i += 1
            if sum(f.tokens is not None for f in flows) >= 2 * LOOPS:
                warm.set()  # every worker / node has served (and cached) the client
            if committed and flow.hops[0].sent > committed[0]:
                started_after[n] += 1

    async def watch() -> None:
        while (state := await store.clients.state(client.client_id)) is not None and state[1] is None:
            await asyncio.sleep(0.002)
        committed.append(time.monotonic())

    loops = [asyncio.create_task(loop(n)) for n in range(LOOPS)]
    try:
        await asyncio.wait_for(warm.wait(), 120)
        watcher = asyncio.create_task(watch())
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jarmor.cli.main", "clients", "offboard", client.client_id,
            "--reason", "vendor compromised", "--by", "cli:incident", "--database", database,
            cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        await asyncio.wait_for(watcher, 120)
        await asyncio.wait_for(asyncio.gather(*loops), 120)
    finally:
        for task in loops:
            task.cancel()
    return flows, started, committed[0]


async def _check_records(store: Store, client: TestClient, issued: list[dict[str, Any]]) -> None:
    """Every token the client got is revoked, and the flow records agree with what the client saw."""
    for tokens in issued:
        for name in ("access_token", "refresh_token"):
            rec = await store.tokens.get(token_hash(tokens[name]))
            assert rec is not None and rec.revoked_at is not None, (name, rec)
    assert await store.tokens.list_for_client(client.client_id, active_at=int(time.time())) == []
    deadline = time.monotonic() + 60
    while True:  # the servers write flow records in batches: poll until every batch is in
        rows = await store.flows.scan(limit=100_000)
        events = [e for e in map(orjson.loads, (r.body for r in rows))
                  if client.client_id in (e.get("client_id"), e.get("client_claimed"))]
        successes = [e for e in events if e["stage"] == "token" and e["outcome"] == TOKENS_ISSUED]
        refusals = [e for e in events if e["outcome"] == "invalid_client"]
        if (len(successes) >= len(issued) and refusals) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert len(successes) == len(issued), "a flow record says tokens were issued that the client never got"
    assert refusals and all("disabled" in (e.get("error_description") or "") for e in refusals), refusals


async def test_offboarding_races_flows_on_two_sqlite_workers(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--workers", "2")
    try:
        await offboarding_race([server, server], server.issuer, server.database, tmp_path, announced=False)
    finally:
        stop_server(server)


@pytest.mark.postgres
@pytest.mark.redis
async def test_offboarding_races_flows_on_two_nodes(cluster: Cluster) -> None:
    await offboarding_race(cluster.nodes[:2], cluster.issuer, cluster.database, cluster.workdir, announced=True)

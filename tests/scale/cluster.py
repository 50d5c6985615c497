"""Several ``jarmor serve`` nodes on one PostgreSQL + Redis, and an async driver for flows across them.

Nodes are started with ``tests/e2e/conftest.py``'s ``start_server``. They share one issuer identifier (the
name a load balancer in front of them would have); requests go to each node's own port.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from jarmor.jose import generate_jwk

from ..e2e.conftest import REGISTRATION_TOKEN, RunningServer, free_port, start_server, stop_server
from ..kit import REDIRECT, TestClient, response_params


@dataclass
class Cluster:
    issuer: str
    database: str
    redis: str | None
    workdir: Path
    nodes: list[RunningServer] = field(default_factory=list)

    def start_node(self, *extra: str) -> RunningServer:
        redis = ("--redis", self.redis) if self.redis else ()
        node = start_server(self.workdir, *redis, "--issuer", self.issuer, *extra, database=self.database)
        self.nodes.append(node)
        return node

    def stop(self) -> None:
        for node in self.nodes:
            if node.process.poll() is None:
                stop_server(node)


def new_cluster(workdir: Path, database: str, redis: str | None) -> Cluster:
    return Cluster(f"http://127.0.0.1:{free_port()}", database, redis, workdir)


def http_client() -> httpx.AsyncClient:
    """No keep-alive: under load a reused connection can race uvicorn closing it (idle for 5 s) and fail a
    non-idempotent request with ``ReadError``; a fresh loopback connection per request costs little."""
    return httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100, max_keepalive_connections=0))


def url(node: RunningServer, path: str) -> str:
    return node.issuer + path


async def register(http: httpx.AsyncClient, node: RunningServer, issuer: str) -> TestClient:
    """A private_key_jwt client that signs request objects (ES256), registered through ``node``."""
    key = generate_jwk("ES256")
    metadata = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_dict()]},
        "id_token_signed_response_alg": "ES256",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    r = await http.post(
        url(node, "/register"), json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return TestClient(body["client_id"], key, "ES256", body, issuer=issuer)


def _authorization_params(r: httpx.Response) -> dict[str, Any]:
    params: dict[str, Any] = response_params(r)
    if "response" in params:  # JARM: read the payload (its signature is tested elsewhere)
        payload = params["response"].split(".")[1]
        params = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return params


@dataclass
class Pending:
    """A pushed authorization request: its ``request_uri`` and the PKCE verifier to redeem its code."""

    request_uri: str
    context: dict[str, Any]


class Driver:
    """One client's flows, each step sent to the node the caller names."""

    def __init__(self, http: httpx.AsyncClient, client: TestClient) -> None:
        self.http = http
        self.client = client

    async def par(self, node: RunningServer) -> Pending:
        ro, ctx = self.client.request_object()
        form = {**self.client.auth_form(), "request": ro, "client_id": self.client.client_id}
        r = await self.http.post(url(node, "/par"), data=form)
        assert r.status_code == 201, r.text
        return Pending(r.json()["request_uri"], ctx)

    async def authorize(self, node: RunningServer, pending: Pending) -> str | None:
        """The authorization code, or ``None`` when the node refused the ``request_uri``."""
        params = {"client_id": self.client.client_id, "request_uri": pending.request_uri}
        r = await self.http.get(url(node, "/authorize"), params=params)
        if r.status_code not in (302, 303):
            assert r.status_code == 400, r.text[:300]
            return None
        got = _authorization_params(r)
        assert "code" in got, got
        assert got.get("iss") == self.client.issuer
        return str(got["code"])

    async def token(self, node: RunningServer, pending: Pending, code: str) -> dict[str, Any] | None:
        """The token response, or ``None`` for ``invalid_grant``."""
        form = {
            **self.client.auth_form(),
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.context["redirect_uri"],
            "code_verifier": pending.context["code_verifier"],
        }
        r = await self.http.post(url(node, "/token"), data=form)
        if r.status_code != 200:
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
            return None
        body: dict[str, Any] = r.json()
        return body

    async def refresh(self, node: RunningServer, refresh_token: str) -> dict[str, Any] | None:
        form = {**self.client.auth_form(), "grant_type": "refresh_token", "refresh_token": refresh_token}
        r = await self.http.post(url(node, "/token"), data=form)
        if r.status_code != 200:
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
            return None
        body: dict[str, Any] = r.json()
        return body

    async def flow(self, par_node: RunningServer, authz_node: RunningServer, token_node: RunningServer) -> dict[str, Any]:
        pending = await self.par(par_node)
        code = await self.authorize(authz_node, pending)
        assert code is not None
        tokens = await self.token(token_node, pending, code)
        assert tokens is not None and tokens["access_token"]
        return tokens


async def bounded(limit: int, *jobs: Any) -> list[Any]:
    """Run coroutines with at most ``limit`` in flight; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))

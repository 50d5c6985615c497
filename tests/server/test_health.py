"""``/healthz`` and ``/readyz``: liveness never depends on the backing services; readiness names the failing
part (database, schema, Redis, keys) with 503 and recovers by itself when the part comes back.

The outage tests put a TCP proxy between the server and the real PostgreSQL / Redis and cut it, which is
what a network partition or a stopped service looks like to a node, without stopping the services the rest
of the suite shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from jarmor.store import migrate as migrations
from jarmor.store import open_store
from tests.kit import make_kit
from tests.store import services


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` from its own thread and event loop (the stores make some
    blocking calls on the test's loop); ``cut()`` drops every connection and stops listening, ``restore()``
    listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _cut(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    def start(self) -> None:
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


async def _ready(kit: Any) -> tuple[int, dict[str, Any]]:
    r = await kit.http.get("/readyz")
    assert r.headers["cache-control"] == "no-store"
    return r.status_code, r.json()


async def test_healthz_and_readyz_on_a_healthy_node() -> None:
    kit = await make_kit(reuse_server_keys=True)
    r = await kit.http.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    status, body = await _ready(kit)
    assert status == 200
    assert body == {"status": "ready", "checks": {"database": "ok", "keys": "ok"}}


async def test_readyz_names_a_schema_at_another_revision(tmp_path: Path) -> None:
    db = tmp_path / "jarmor.db"
    kit = await make_kit(reuse_server_keys=True, store=open_store(f"sqlite:///{db}"))
    try:
        assert (await _ready(kit))[1]["checks"] == {"database": "ok", "schema": "ok", "keys": "ok"}
        with sqlite3.connect(db) as conn:  # what a newer node's `jarmor db upgrade` leaves behind
            conn.execute("UPDATE alembic_version SET version_num = '9999'")
        status, body = await _ready(kit)
        assert status == 503 and body["status"] == "unavailable"
        assert "9999" in body["checks"]["schema"] and migrations.HEAD in body["checks"]["schema"]
        assert body["checks"]["database"] == "ok"
        assert (await kit.http.get("/healthz")).status_code == 200  # liveness does not depend on it
    finally:
        await kit.store.close()


async def test_readyz_before_the_keys_are_loaded() -> None:
    from jarmor.config import ServerConfig
    from jarmor.server.app import JarmorServer
    from jarmor.server.health import readiness
    from jarmor.store import MemoryStore

    server = JarmorServer(ServerConfig(issuer="https://as.example.com"), MemoryStore())
    assert (await readiness(server))["keys"] == "the server keys are not loaded"


@pytest.fixture
async def proxied_services() -> AsyncIterator[tuple[TcpProxy, TcpProxy, str, str]]:
    """PostgreSQL and Redis, each behind its own proxy; yields the proxies and the URLs through them."""
    with services.postgres_schema() as pg_url, services.redis_prefix() as (redis_url, _prefix):
        pg, rd = make_url(pg_url), make_url(redis_url)
        pg_proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
        redis_proxy = TcpProxy(rd.host or "127.0.0.1", rd.port or 6379)
        pg_proxy.start()
        redis_proxy.start()
        try:
            yield (
                pg_proxy,
                redis_proxy,
                pg.set(port=pg_proxy.port, host="127.0.0.1").render_as_string(hide_password=False),
                rd.set(port=redis_proxy.port, host="127.0.0.1").render_as_string(hide_password=False),
            )
        finally:
            pg_proxy.close()
            redis_proxy.close()


@pytest.mark.postgres
async def test_readyz_follows_postgresql_and_redis_outages(
    proxied_services: tuple[TcpProxy, TcpProxy, str, str],
) -> None:
    pg_proxy, redis_proxy, pg_url, redis_url = proxied_services
    kit = await make_kit(reuse_server_keys=True, store=open_store(pg_url, redis_url))
    try:
        status, body = await _ready(kit)
        assert status == 200, body
        assert body["checks"] == {"database": "ok", "schema": "ok", "redis": "ok", "keys": "ok"}

        redis_proxy.cut()
        status, body = await _ready(kit)
        assert status == 503
        assert body["checks"]["redis"].startswith("Redis does not answer")
        assert body["checks"]["database"] == "ok"
        redis_proxy.restore()
        status, body = await _ready(kit)
        assert status == 200, body

        pg_proxy.cut()
        status, body = await _ready(kit)
        assert status == 503
        assert body["checks"]["database"] != "ok" and body["checks"]["redis"] == "ok"
        assert (await kit.http.get("/healthz")).status_code == 200
        pg_proxy.restore()
        status, body = await _ready(kit)
        if status != 200:  # the pool may hand out one connection the cut broke: it is discarded, then fine
            status, body = await _ready(kit)
        assert status == 200, body
    finally:
        await kit.store.close()

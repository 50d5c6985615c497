"""An unreachable store is an outage, not a 500 (issue 12.4).

A real ``redis-server`` is started on a free port for these tests, so that it can be stopped and started
again: ``jarmor serve`` refuses to start without it (one line, exit 1); while it is down the OAuth endpoints
answer ``temporarily_unavailable`` (JSON 503 on the back channel, a redirect once the redirect URI is
verified, the error page before), other endpoints 503; the outage is logged once, without a traceback; once
it is back, flows complete again and the recovery is logged once.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis

from jarmor.store.base import StoreError, StoreUnavailable
from jarmor.store.composite import CompositeStore
from jarmor.store.memory import MemoryStore
from jarmor.store.redis_store import RedisEphemeralStore
from tests.kit import REDIRECT, Clock, Kit, TestClient, make_kit, pkce_pair

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server without persistence, stopped and started at will on one port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:  # poll until it answers (bounded), no fixed sleep
            try:
                if probe.ping():
                    break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        probe.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_serve_refuses_to_start_without_redis(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    out = subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", "serve", "--database", f"sqlite:///{tmp_path / 'j.db'}",
         "--redis", f"redis://:secret@127.0.0.1:{port}/0", "--port", str(free_port())],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jarmor: cannot reach Redis at redis://:***@127.0.0.1:{port}/0")
    assert "Traceback" not in out.stderr and "secret" not in out.stderr and "serving" not in out.stdout


async def _kit(redis_url: str) -> Kit:
    store = CompositeStore(MemoryStore(), RedisEphemeralStore.from_url(redis_url))  # type: ignore[arg-type]
    return await make_kit(store=store, reuse_server_keys=True)


async def _code(kit: Kit, client: TestClient) -> tuple[str, str]:
    """A plain (unsigned, not pushed) authorization request, auto-approved: (code, code_verifier)."""
    verifier, challenge = pkce_pair()
    r = await kit.authorize({"client_id": client.client_id, "response_type": "code", "redirect_uri": REDIRECT,
                             "scope": "openid", "state": "s1", "code_challenge": challenge,
                             "code_challenge_method": "S256", "response_mode": "query"})
    assert r.status_code == 303, r.text
    params = dict(parse_qsl(urlsplit(r.headers["location"]).query))
    assert "code" in params, params
    return params["code"], verifier


def _outage_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "jarmor.server" and "storage" in r.getMessage()]


async def test_redis_going_away_is_temporarily_unavailable_logged_once(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jarmor")
    kit = await _kit(redis_server.url)
    clock = Clock()
    kit.server.outage.clock = clock
    client = await kit.add_client(risk_tier="baseline", client_kind="first-party")
    code, verifier = await _code(kit, client)
    token_form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                  "code_verifier": verifier}
    assert (await kit.token(client, token_form)).status_code == 200

    redis_server.stop()
    # back channel: JSON 503 temporarily_unavailable
    verifier, challenge = pkce_pair()
    r = await kit.par(client, {"client_id": client.client_id, "response_type": "code", "redirect_uri": REDIRECT,
                               "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable", r.text
    assert r.headers["retry-after"] == "5" and r.headers["cache-control"] == "no-store"
    r = await kit.token(client, {**token_form, "code": "x" * 43})
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    # front channel, redirect URI verified: the client hears it on its redirect URI
    r = await kit.authorize({"client_id": client.client_id, "response_type": "code", "redirect_uri": REDIRECT,
                             "scope": "openid", "state": "s2", "code_challenge": challenge,
                             "code_challenge_method": "S256", "response_mode": "query"})
    assert r.status_code == 303, r.text
    params = dict(parse_qsl(urlsplit(r.headers["location"]).query))
    assert params["error"] == "temporarily_unavailable" and params["state"] == "s2" and "code" not in params
    # front channel, nothing verified (a request by reference needs the store first): the error page
    r = await kit.authorize({"client_id": client.client_id, "request_uri": "urn:ietf:params:oauth:request_uri:x"})
    assert r.status_code == 503 and "temporarily_unavailable" in r.text and "location" not in r.headers
    # other endpoints: a plain 503 (the dashboard reads its sessions from the short-lived store)
    kit.http.cookies.set("jarmor_admin", "x" * 40)
    r = await kit.http.get("/admin/clients")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert (await kit.http.get("/jwks")).status_code == 200  # needs no store: still served

    logged = _outage_logs(caplog)
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR and logged[0].exc_info is None
    assert "Redis is unreachable" in logged[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]  # no traceback, for any request
    assert kit.server.outage.down and kit.server.outage.failures == 5

    redis_server.start()
    clock.advance(2)
    assert (await kit.http.get("/jwks")).status_code == 200  # a request completes: the probe finds Redis back
    assert not kit.server.outage.down
    code, verifier = await _code(kit, client)
    assert (await kit.token(client, {**token_form, "code": code, "code_verifier": verifier})).status_code == 200
    logged = _outage_logs(caplog)
    assert [r.levelno for r in logged] == [logging.ERROR, logging.WARNING]
    assert "available again" in logged[1].getMessage() and "5 request(s) answered 503" in logged[1].getMessage()
    await kit.http.aclose()
    await kit.store.close()


async def test_redis_errors_that_are_not_an_outage_stay_errors(redis_server: RedisServer) -> None:
    """Only a connection failure is ``StoreUnavailable``; a command error is not an outage."""
    store = RedisEphemeralStore.from_url(redis_server.url)
    await store.client.lpush(store.key("ns", "list"), b"x")
    with pytest.raises(StoreError) as wrong_type:
        await store.get("ns", "list")
    assert not isinstance(wrong_type.value, StoreUnavailable)
    redis_server.stop()
    with pytest.raises(StoreUnavailable):
        await store.get("ns", "k")
    with pytest.raises(StoreUnavailable):
        await store.ping()
    await store.close()


class TcpProxy:
    """A TCP forwarder to PostgreSQL on a fixed port, so that the database can "go away" and come back
    without touching the shared PostgreSQL server: ``stop`` closes the listener and every connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


async def test_postgresql_going_away_is_the_same_outage(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL down (a connection lost, or none to be had within the pool timeout) is ``StoreUnavailable``
    too: the same temporarily_unavailable answers and the same single log line."""
    from sqlalchemy.engine import make_url

    import jarmor.store.sql.postgres as pg
    from jarmor.store.sql import SqlStore
    from tests.store import services

    monkeypatch.setattr(pg, "POOL_TIMEOUT", 0.5)  # a request waits this long for a connection that cannot come
    caplog.set_level(logging.INFO, logger="jarmor")
    with services.postgres_schema() as url:
        parsed = make_url(url)
        proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        proxy.start()
        store = SqlStore.open(parsed.set(host="127.0.0.1", port=proxy.port))
        try:
            kit = await make_kit(store=store, reuse_server_keys=True)
            kit.server.outage.clock = clock = Clock()
            client = await kit.add_client(risk_tier="baseline", client_kind="first-party")
            code, verifier = await _code(kit, client)
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                    "code_verifier": verifier}
            proxy.stop()
            for _ in range(3):  # a lost connection, then no connection within the pool timeout
                r = await kit.token(client, form)
                assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable", r.text
            logged = _outage_logs(caplog)
            assert len(logged) == 1 and "PostgreSQL is unreachable" in logged[0].getMessage()
            assert not [r for r in caplog.records if r.exc_info]
            proxy.start()
            clock.advance(2)
            deadline = time.monotonic() + 30
            while kit.server.outage.down:  # the pool reconnects in the background: poll, bounded
                assert time.monotonic() < deadline, "the outage never ended"
                await kit.http.get("/jwks")
                clock.advance(2)
            r = await kit.token(client, form)  # the code was never redeemed: it still works
            assert r.status_code == 200, r.text
            assert [r.levelno for r in _outage_logs(caplog)] == [logging.ERROR, logging.WARNING]
            await kit.http.aclose()
        finally:
            proxy.stop()
            await store.close()

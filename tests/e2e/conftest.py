"""A real ``jarmor serve`` process on loopback, on a fresh SQLite database, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REGISTRATION_TOKEN = "e2e-initial-access-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    issuer: str
    database: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def register(self, metadata: dict[str, object]) -> dict[str, object]:
        r = httpx.post(
            f"{self.issuer}/register",
            json=metadata,
            headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


def start_server(
    workdir: Path,
    *extra: str,
    auto_approve: str | None = "alice",
    env: dict[str, str] | None = None,
    port: int | None = None,
    database: str | None = None,
) -> RunningServer:
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    database = database or f"sqlite:///{workdir / 'jarmor.db'}"
    args = [
        sys.executable,
        "-m",
        "jarmor.cli.main",
        "serve",
        "--port",
        str(port),
        "--database",
        database,
        "--registration-token",
        REGISTRATION_TOKEN,
        *extra,
    ]
    if auto_approve:
        args += ["--auto-approve", auto_approve]
    log = open(workdir / f"serve-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        args, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / f"serve-{port}.log").read_text())
        try:
            if httpx.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=1).status_code == 200:
                return RunningServer(issuer, database, proc, workdir)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("jarmor serve did not start")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("jarmor-e2e")
    server = start_server(workdir)
    try:
        yield server
    finally:
        stop_server(server)

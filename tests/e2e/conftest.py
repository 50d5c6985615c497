"""A real ``jarmor serve`` process on loopback, on a fresh SQLite database, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from jarmor.cli.demo_user import Browser, DemoUser, enrol_factors, sign_in_plan
from jarmor.protocol.policy import DEFAULT_TIERS, Control

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


PASSWORD = "correct horse battery staple"


def without_assurance(workdir: Path) -> tuple[str, str]:
    """``--config FILE`` arguments for ``start_server``: the built-in policy but for ``high`` and ``critical``
    requiring no ``authentication_assurance`` (``controls_without_assurance``), for tests about something
    else whose flows are approved by ``--auto-approve`` or a password-only sign-in."""
    path = workdir / "without-assurance.toml"
    path.write_text("".join(f"[policy.tiers.{t}]\n{controls_without_assurance(t)}\n\n" for t in ("high", "critical")))
    return "--config", str(path)


def controls_without_assurance(tier: str) -> str:
    """``controls = [...]`` of the built-in ``tier`` minus ``authentication_assurance``, for a config file's
    ``[policy.tiers.<tier>]`` table: the explicit, named loosening of tests about something else (key
    rotation under load, mTLS binding) whose flows are approved by ``--auto-approve``, which signs nobody in."""
    kept = sorted(c.value for c in DEFAULT_TIERS[tier].controls if c is not Control.AUTHENTICATION_ASSURANCE)
    return "controls = [" + ", ".join(f'"{c}"' for c in kept) + "]"


def enrol_person(server: RunningServer, username: str = "alice") -> DemoUser:
    """A user added with ``jarmor users add`` who enrols, through the account pages, a TOTP app and a
    passkey on a software authenticator (``jarmor demo``'s ``enrol_factors``): what signing in at the built-in
    high (AAL2) and critical (AAL3) tiers needs."""
    done = subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", "users", "add", username, "--password-stdin",
         "--database", server.database],
        input=PASSWORD + "\n", capture_output=True, text=True, cwd=server.workdir, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return asyncio.run(enrol_factors(None, server.issuer, username, PASSWORD))


def follow(person: DemoUser, url: str, tier: str) -> dict[str, str] | str:
    """The user agent (``jarmor demo``'s ``Browser``): follow redirects, sign ``person`` in as ``tier`` of the
    built-in policy needs, allow, and return what reaches the callback (a fragment's parameters as a dict)."""
    plan = sign_in_plan(DEFAULT_TIERS[tier], person)

    async def run() -> Mapping[str, str] | str:
        async with httpx.AsyncClient(timeout=10) as http:
            return await Browser(http, person, lambda line: None, plan).run(url)

    delivered = asyncio.run(run())
    if isinstance(delivered, str) and "#" in delivered:
        return dict(parse_qsl(urlsplit(delivered).fragment))
    return dict(delivered) if not isinstance(delivered, str) else delivered


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``jarmor serve`` with its defaults: no auto-approve; flows sign in for real (``person``)."""
    workdir = tmp_path_factory.mktemp("jarmor-e2e")
    server = start_server(workdir, auto_approve=None)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def person(live_server: RunningServer) -> DemoUser:
    return enrol_person(live_server)

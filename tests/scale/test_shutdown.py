"""``SIGTERM`` under load loses nothing: requests in flight finish, the flow-record queue is drained to the
database before the process exits, and the chain verifies afterwards (one and two workers)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..e2e.conftest import start_server
from .cluster import Driver, http_client, register

pytestmark = pytest.mark.scale

IN_FLIGHT = 8
STOP_AFTER = 40  # finished flows before SIGTERM is sent
MAX_FLOWS = 400  # the load stops by itself even if the server never goes away


def jarmor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jarmor.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_under_load_keeps_every_finished_flow(tmp_path: Path, workers: str) -> None:
    # a long batching interval: records of the last flows are still queued in memory when SIGTERM arrives
    (tmp_path / "jarmor.toml").write_text("[settings]\nflow_record_interval = 2.0\n")
    server = start_server(tmp_path, "--workers", workers, "--config", str(tmp_path / "jarmor.toml"))
    finished: list[str] = []
    signalled = asyncio.Event()
    try:
        async with http_client() as http:
            driver = Driver(http, await register(http, server, server.issuer))
            started = 0

            async def worker() -> None:
                nonlocal started
                while started < MAX_FLOWS:
                    started += 1
                    try:
                        tokens: dict[str, Any] = await driver.flow(server, server, server)
                    except (httpx.TransportError, AssertionError):
                        if signalled.is_set():
                            return  # the server stopped accepting: expected after SIGTERM
                        raise
                    finished.append(tokens["access_token"])
                    if len(finished) == STOP_AFTER and not signalled.is_set():
                        server.process.send_signal(signal.SIGTERM)
                        signalled.set()

            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        assert signalled.is_set(), "the load ended before SIGTERM was sent"
        # uvicorn re-raises the signal once it has shut down cleanly; the records below prove the drain
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert len(finished) >= STOP_AFTER

    out = jarmor("flows", "--database", server.database, "--outcome", "success", "--limit", "10000",
                 "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    successes = json.loads(out.stdout)
    # every flow whose tokens reached the client has its complete record (and no other flow succeeded)
    assert len(successes) == len(finished)
    verified = jarmor("flows", "verify", "--database", server.database, cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "signed checkpoints:" in verified.stdout and "none yet" not in verified.stdout

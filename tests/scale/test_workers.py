"""``jarmor serve --workers 2`` on one SQLite file: flows work and single use holds across the workers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ..e2e.conftest import start_server, stop_server
from .cluster import Driver, bounded, http_client, register

pytestmark = pytest.mark.scale


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


async def test_two_workers_on_sqlite(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--workers", "2")
    try:
        workers = [p for p in _children(server.process.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2, workers
        async with http_client() as http:
            drivers = [Driver(http, await register(http, server, server.issuer)) for _ in range(2)]
            for driver in drivers:
                tokens = await driver.flow(server, server, server)
                assert await driver.refresh(server, tokens["refresh_token"]) is not None

            uri_wins: list[int] = []
            code_wins: list[int] = []

            async def one(i: int) -> None:
                driver = drivers[i % 2]
                pending = await driver.par(server)
                codes = await asyncio.gather(*(driver.authorize(server, pending) for _ in range(2)))
                won = [c for c in codes if c is not None]
                uri_wins.append(len(won))
                if won:
                    results = await asyncio.gather(*(driver.token(server, pending, won[0]) for _ in range(2)))
                    code_wins.append(sum(r is not None for r in results))

            await bounded(16, *(one(i) for i in range(100)))
        assert set(uri_wins) == {1} and len(uri_wins) == 100
        assert set(code_wins) == {1} and len(code_wins) == 100
    finally:
        stop_server(server)

"""``jarmor clients list``: filters (tier, kind, owner, status, staleness, text) and paging over the inventory."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from jarmor.store import open_store
from jarmor.store.base import ClientRecord


def jarmor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JARMOR_")}
    return subprocess.run([sys.executable, "-m", "jarmor.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=env)


def test_filters_and_paging(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jarmor.db'}"
    now = int(time.time())

    async def fill() -> None:
        store = open_store(url)
        try:
            for i in range(7):
                meta = {"client_name": f"App {i}", "risk_tier": "high" if i < 3 else "baseline",
                        "client_kind": "machine" if i % 2 else "third-party", "owner": "payments" if i < 4 else "hr"}
                created = now - (40 * 86400 if i == 6 else 0)
                await store.clients.create(ClientRecord(f"c{i}", meta, created, created,
                                                        disabled_at=now if i == 5 else None))
        finally:
            await store.close()

    asyncio.run(fill())

    def ids(*args: str) -> list[str]:
        out = jarmor("clients", "list", "--database", url, "--format", "json", *args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        return sorted(c["client_id"] for c in json.loads(out.stdout))

    assert ids() == [f"c{i}" for i in range(7)]
    assert ids("--tier", "high") == ["c0", "c1", "c2"]
    assert ids("--kind", "machine", "--owner", "payments") == ["c1", "c3"]
    assert ids("--status", "disabled") == ["c5"] and "c5" not in ids("--status", "active")
    assert ids("--stale-days", "30") == ["c6"]
    assert ids("--search", "APP 4") == ["c4"]
    page1, page2 = ids("--limit", "4"), ids("--limit", "4", "--offset", "4")
    assert len(page1) == 4 and len(page2) == 3 and not set(page1) & set(page2)
    table = jarmor("clients", "list", "--database", url, "--limit", "2", cwd=tmp_path)
    assert table.returncode == 0 and "2 of 7 matching client(s); next page: --offset 2" in table.stderr
    bad = jarmor("clients", "list", "--database", url, "--kind", "robot", cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1

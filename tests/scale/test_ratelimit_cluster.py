"""Rate limits hold across nodes: two ``jarmor serve`` nodes on one PostgreSQL and one Redis count the same
source address together (the counters live in Redis)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ..store import services
from .cluster import new_cluster

pytestmark = pytest.mark.scale

LIMIT = 4


def test_the_address_limit_is_shared_by_two_nodes(tmp_path: Path) -> None:
    config = tmp_path / "limits.toml"
    config.write_text(f"[settings]\nrate_limit_window = 3600\nrate_limit_per_address = {LIMIT}\n")
    with services.postgres_schema(migrate=False) as database, services.redis_prefix() as (redis, _prefix):
        upgrade = subprocess.run([sys.executable, "-m", "jarmor.cli.main", "db", "upgrade", "--database", database],
                                 capture_output=True, text=True, timeout=120)
        assert upgrade.returncode == 0, upgrade.stderr
        cluster = new_cluster(tmp_path, database, redis)
        try:
            nodes = [cluster.start_node("--config", str(config)) for _ in range(2)]
            statuses = []
            for i in range(LIMIT + 2):  # alternate the nodes: each sees only half of the requests
                r = httpx.post(nodes[i % 2].issuer + "/register", json={"redirect_uris": ["https://a.example/cb"]},
                               headers={"Authorization": "Bearer wrong"}, timeout=30)
                statuses.append(r.status_code)
            assert statuses[:LIMIT] == [401] * LIMIT, statuses  # counted, then refused for the wrong token
            assert statuses[LIMIT:] == [429, 429], statuses
            assert int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "temporarily_unavailable"
        finally:
            cluster.stop()

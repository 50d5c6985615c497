"""A two-node cluster (``jarmor serve`` x 2) on a fresh PostgreSQL schema and a fresh Redis key prefix."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from ..store import services
from .cluster import Cluster, new_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with services.postgres_schema(migrate=False) as database, services.redis_prefix() as (redis, _prefix):
        # the deployment step a real cluster takes before its nodes start
        upgrade = subprocess.run(
            [sys.executable, "-m", "jarmor.cli.main", "db", "upgrade", "--database", database],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert upgrade.returncode == 0, upgrade.stderr
        c = new_cluster(tmp_path_factory.mktemp("cluster"), database, redis)
        try:
            c.start_node()  # the first node generates the server keys
            c.start_node()
            yield c
        finally:
            c.stop()

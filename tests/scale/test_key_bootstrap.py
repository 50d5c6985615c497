"""Nodes started at the same moment on a fresh database end with one server key set, not one each.

Key bootstrap holds an ``add_once`` mark in the shared short-lived store (PostgreSQL's table or Redis) while
it generates; the other nodes wait for its keys. Checked in-process (two stores on one PostgreSQL schema,
started concurrently) and with two real ``jarmor serve`` nodes launched together.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from jarmor.config import ServerConfig
from jarmor.server.app import JarmorServer
from jarmor.server.keyprotect import KeyProtector
from jarmor.server.keys import BOOTSTRAP_NAMESPACE, ensure_keys
from jarmor.store import open_store
from jarmor.store.base import ServerKeyRecord

from ..e2e.conftest import free_port, start_server, stop_server
from ..store import services

pytestmark = pytest.mark.postgres


def _per_alg(records: list[ServerKeyRecord]) -> Counter[str]:
    return Counter(r.alg for r in records)


async def test_servers_started_together_in_process_share_one_key_set() -> None:
    with services.postgres_schema() as url:
        stores = [open_store(url) for _ in range(3)]
        try:
            servers = [JarmorServer(ServerConfig(issuer="https://as.example.com"), s) for s in stores]
            await asyncio.gather(*(s.start() for s in servers))
            records = await stores[0].keys.list()
            counts = _per_alg(records)
            assert counts and set(counts.values()) == {1}, counts
            published = [sorted(k["kid"] for k in s.keyring.public_jwks()["keys"]) for s in servers]
            assert published[0] == published[1] == published[2]
            assert await stores[0].ephemeral.get(BOOTSTRAP_NAMESPACE, "lock") is None  # released
        finally:
            for s in stores:
                await s.close()


async def test_a_waiting_node_takes_over_when_the_holder_never_finishes() -> None:
    """A holder that died leaves its mark until the TTL; a later start generates the keys itself."""
    with services.postgres_schema() as url:
        store = open_store(url)
        try:
            assert await store.ephemeral.add_once(BOOTSTRAP_NAMESPACE, "lock", 1)  # a holder that died
            records = await ensure_keys(store.keys, KeyProtector(None), lock=store.ephemeral, algs=("ES256",))
            assert _per_alg(records) == Counter({"ES256": 1, "secret": 1})
        finally:
            await store.close()


def test_two_serve_processes_started_together_on_a_fresh_database(tmp_path: Path) -> None:
    with services.postgres_schema(migrate=False) as database, services.redis_prefix() as (redis, _prefix):
        upgrade = subprocess.run(
            [sys.executable, "-m", "jarmor.cli.main", "db", "upgrade", "--database", database],
            capture_output=True, text=True, timeout=120,
        )
        assert upgrade.returncode == 0, upgrade.stderr
        issuer = f"http://127.0.0.1:{free_port()}"
        with ThreadPoolExecutor(2) as pool:
            starting = [
                pool.submit(start_server, tmp_path, "--redis", redis, "--issuer", issuer, database=database)
                for _ in range(2)
            ]
            nodes = [f.result() for f in starting]
        try:
            jwks = [httpx.get(node.issuer + "/jwks", timeout=10).json() for node in nodes]
            assert sorted(k["kid"] for k in jwks[0]["keys"]) == sorted(k["kid"] for k in jwks[1]["keys"])

            async def stored() -> list[ServerKeyRecord]:
                store = open_store(database)
                try:
                    return await store.keys.list()
                finally:
                    await store.close()

            counts = _per_alg(asyncio.run(stored()))
            assert counts and set(counts.values()) == {1}, counts
        finally:
            for node in nodes:
                stop_server(node)

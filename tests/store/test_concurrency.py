"""Single-use operations under concurrency: asyncio tasks, threads, and separate OS processes.

The asyncio tests run on every store kind (PostgreSQL and Redis included, see ``conftest.py``); the process
races on an SQLite file, on PostgreSQL and on Redis.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections import Counter
from pathlib import Path

import pytest

from jarmor.store import Store, open_store
from jarmor.store.sql import SqlStore

from . import _race, services
from .conftest import T0


async def test_take_50_tasks_one_winner(store: Store) -> None:
    await store.ephemeral.put("code", "k", b"grant", 60)
    results = await asyncio.gather(*(store.ephemeral.take("code", "k") for _ in range(50)))
    assert results.count(b"grant") == 1
    assert results.count(None) == 49


async def test_take_and_mark_50_tasks_one_winner(store: Store) -> None:
    """Of concurrent redemptions of one code exactly one takes it, and every other finds the mark."""
    await store.ephemeral.put("code", "k", b"grant", 60)
    results = await asyncio.gather(
        *(store.ephemeral.take_and_mark("code", "k", "code-used", f"g{i}".encode(), 60) for i in range(50))
    )
    assert results.count(b"grant") == 1
    assert results.count(None) == 49
    assert await store.ephemeral.get("code-used", "k") == f"g{results.index(b'grant')}".encode()


async def test_transaction_rotate_50_tasks_one_winner(store: Store) -> None:
    """A refresh in one transaction (rotation and the new access token): exactly one of 50 concurrent
    refreshes with one refresh token wins, and only the winner's access token exists."""
    await store.tokens.create(_race.refresh_token("old"))

    async def refresh(i: int) -> bool:
        async with store.transaction() as tx:
            if not await tx.rotate_token("old", _race.refresh_token(f"new-{i}"), T0 + 1):
                return False
            await tx.create_token(_race.refresh_token(f"access-{i}"))
            return True

    results = await asyncio.gather(*(refresh(i) for i in range(50)))
    assert results.count(True) == 1
    winner = results.index(True)
    old = await store.tokens.get("old")
    assert old is not None and old.rotated_to == f"new-{winner}"
    live = [i for i in range(50) if await store.tokens.get(f"access-{i}") is not None]
    assert live == [winner]


async def test_add_once_50_tasks_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.ephemeral.add_once("jti", "j", 60) for _ in range(50)))
    assert results.count(True) == 1


async def test_incr_50_tasks_distinct_counts(store: Store) -> None:
    """Every concurrent increment sees its own count: a limit of ``n`` lets exactly ``n`` callers through."""
    results = await asyncio.gather(*(store.ephemeral.incr("attempts", "k", 60) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    assert await store.ephemeral.get("attempts", "k") == b"50"


async def test_rotate_50_tasks_one_winner(store: Store) -> None:
    await store.tokens.create(_race.refresh_token("old"))
    results = await asyncio.gather(
        *(store.tokens.rotate("old", _race.refresh_token(f"new-{i}"), T0 + 1) for i in range(50))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    old = await store.tokens.get("old")
    assert old is not None and old.rotated_to == f"new-{winner}"


def _thread_race(url: str, shared: SqlStore | None, n_threads: int, n_keys: int) -> list[Counter[str]]:
    barrier = threading.Barrier(n_threads)
    took: Counter[str] = Counter()
    added: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []
    counts: dict[str, list[int]] = {k: [] for k in _race.keys(n_keys)}

    async def work() -> None:
        store = shared or SqlStore.open(url)
        try:
            barrier.wait()
            for k in _race.keys(n_keys):
                t = await store.ephemeral.take("code", k)
                a = await store.ephemeral.add_once("jti", k, 60)
                n = await store.ephemeral.incr("attempts", k, 60)
                with lock:
                    took[k] += t is not None
                    added[k] += a
                    counts[k].append(n)
        finally:
            if shared is None:
                await store.close()

    def main() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=main) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert all(sorted(seen) == list(range(1, n_threads + 1)) for seen in counts.values()), "incr lost a count"
    return [took, added]


async def test_threads_with_own_stores_race_on_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jarmor.db'}"
    setup = SqlStore.open(url)
    for k in _race.keys(100):
        await setup.ephemeral.put("code", k, b"v", 60)
    took, added = await asyncio.to_thread(_thread_race, url, None, 6, 100)
    await setup.close()
    assert took == Counter({k: 1 for k in _race.keys(100)})
    assert added == Counter({k: 1 for k in _race.keys(100)})


async def test_threads_sharing_one_store(sqlite_store: SqlStore) -> None:
    for k in _race.keys(100):
        await sqlite_store.ephemeral.put("code", k, b"v", 10**10)
    took, added = await asyncio.to_thread(_thread_race, "", sqlite_store, 6, 100)
    assert took == Counter({k: 1 for k in _race.keys(100)})
    assert added == Counter({k: 1 for k in _race.keys(100)})


def _process_race(url: str, redis_url: str | None, n_procs: int, n_keys: int) -> None:
    """Separate interpreters, each with its own store on one database: every key is won exactly once."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n_procs, timeout=120)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_race.run, args=(url, redis_url, w, n_keys, barrier, results)) for w in range(n_procs)
    ]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=180) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    errors = {w: o["error"] for w, o in outcomes.items() if "error" in o}
    assert not errors, errors

    everything = set(_race.keys(n_keys))
    for k in everything:
        seen = sorted(n for o in outcomes.values() for n in o["counted"][k])
        assert seen == list(range(1, 2 * n_procs + 1)), f"incr of {k} across processes: {seen}"
    for op in ("took", "added", "rotated", "marked"):
        wins = Counter(k for o in outcomes.values() for k in o[op])
        assert set(wins) == everything, f"{op}: some keys were never won"
        assert max(wins.values()) == 1, f"{op}: keys won twice: {[k for k, c in wins.items() if c > 1]}"
    # every process won something, or the test did not race at all
    assert sum(1 for o in outcomes.values() if o["took"] or o["added"] or o["rotated"] or o["marked"]) >= 2

    async def check() -> None:
        store = open_store(url, redis_url)
        try:
            for k in _race.keys(n_keys):
                old = await store.tokens.get(f"old-{k}")
                assert old is not None and old.rotated_to is not None
                assert await store.tokens.get(old.rotated_to) is not None
                assert await store.ephemeral.get("code", k) is None
                assert await store.ephemeral.get("code2", k) is None
                assert (await store.ephemeral.get("code-used", k) or b"").startswith(b"w")
        finally:
            await store.close()

    asyncio.run(check())


def test_processes_race_on_one_file(tmp_path: Path) -> None:
    """Four processes on one fresh SQLite file (they also race to create the schema)."""
    _process_race(f"sqlite:///{tmp_path / 'shared.db'}", None, 4, 200)


@pytest.mark.postgres
def test_processes_race_on_postgres() -> None:
    """Four processes, each with its own connection pool, on one PostgreSQL schema."""
    with services.postgres_schema() as url:
        _process_race(url, None, 4, 100)


@pytest.mark.redis
def test_processes_race_on_redis(tmp_path: Path) -> None:
    """Four processes on one Redis (take, add_once) and one SQLite file (rotate)."""
    with services.redis_prefix() as (redis_url, _prefix):
        _process_race(f"sqlite:///{tmp_path / 'shared.db'}", redis_url, 4, 200)

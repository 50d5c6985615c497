"""Concurrent appenders on one chain: asyncio tasks, threads with their own stores (connection pools), and
separate OS processes each with its own recorder — the chain stays one gapless, verifiable sequence."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections import Counter

import pytest

from jarmor.governance.chain import verify
from jarmor.governance.records import seal
from jarmor.store import SqlStore
from jarmor.store.base import FlowRecordStore
from tests.store import services

from . import _append_worker
from .conftest import T0, Flows, event


async def _assert_chain(flows_store: FlowRecordStore, total: int) -> None:
    rep = await verify(flows_store)
    assert rep.ok, [str(p) for p in rep.problems]
    assert rep.records == total and rep.head_seq == total


async def test_concurrent_tasks_append_to_one_chain(flows_backend: Flows) -> None:
    store = flows_backend.store

    async def appender(task: int) -> None:
        for batch in range(5):
            await store.append([event(flow_id=f"t{task}-{batch}", at=T0 + i).entry() for i in range(4)], seal)
            await asyncio.sleep(0)

    await asyncio.gather(*(appender(t) for t in range(20)))
    await _assert_chain(store, 20 * 5 * 4)
    rows = await store.scan(limit=1000)
    # each batch is contiguous in the chain: no batch interleaves with another
    flows_in_order = [r.flow_id for r in rows]
    for i in range(0, len(flows_in_order), 4):
        assert len(set(flows_in_order[i : i + 4])) == 1


def _threads(url: str, n_threads: int, batches: int, size: int) -> None:
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        async def run() -> None:
            store = SqlStore.open(url)  # its own connection (SQLite) or pool (PostgreSQL)
            try:
                barrier.wait()
                for b in range(batches):
                    entries = [event(flow_id=f"w{worker}-{b}", at=T0 + i).entry() for i in range(size)]
                    await store.flows.append(entries, seal)
            finally:
                await store.close()

        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


async def _verify_url(url: str, total: int) -> None:
    store = SqlStore.open(url)
    try:
        await _assert_chain(store.flows, total)
        counts = Counter(r.flow_id.split("-")[0] for r in await store.flows.scan(limit=100_000))
        assert len(counts) > 1
    finally:
        await store.close()


async def test_threads_with_their_own_stores_on_sqlite(sqlite_url: str) -> None:
    SqlStore.open(sqlite_url).engine.dispose()  # create the schema once
    await asyncio.to_thread(_threads, sqlite_url, 6, 15, 5)
    await _verify_url(sqlite_url, 6 * 15 * 5)


@pytest.mark.postgres
async def test_threads_with_their_own_pools_on_postgres() -> None:
    with services.postgres_schema() as url:
        await asyncio.to_thread(_threads, url, 8, 15, 5)
        await _verify_url(url, 8 * 15 * 5)


def _processes(url: str, workers: int, n: int) -> dict[int, object]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_append_worker.run, args=(url, w, n, barrier, results)) for w in range(workers)]
    for p in procs:
        p.start()
    out = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    return out


async def test_processes_with_recorders_on_sqlite(sqlite_url: str) -> None:
    SqlStore.open(sqlite_url).engine.dispose()
    written = await asyncio.to_thread(_processes, sqlite_url, 4, 120)
    assert written == {w: 120 for w in range(4)}, written
    await _verify_url(sqlite_url, 4 * 120)


@pytest.mark.postgres
async def test_processes_with_recorders_on_postgres() -> None:
    with services.postgres_schema() as url:
        written = await asyncio.to_thread(_processes, url, 4, 120)
        assert written == {w: 120 for w in range(4)}, written
        await _verify_url(url, 4 * 120)

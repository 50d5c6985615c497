"""The recorder: never blocks or fails the caller, batches writes, bounds its queue (drops are counted and
logged), retries a failed batch, flushes on close."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from jarmor.governance.chain import verify
from jarmor.governance.recorder import FlowRecorder
from jarmor.store.base import FlowEntry, Seal, StoreUnavailable
from jarmor.store.flow_memory import MemoryFlowRecordStore

from .conftest import T0, event


class SlowStore(MemoryFlowRecordStore):
    def __init__(self, delay: float = 0.0, fail: int = 0, error: type[Exception] = RuntimeError) -> None:
        super().__init__()
        self.delay, self.fail, self.error = delay, fail, error
        self.sizes: list[int] = []

    async def append(self, entries: Sequence[FlowEntry], seal: Seal) -> int:
        await asyncio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise self.error("database unavailable")
        self.sizes.append(len(entries))
        return await super().append(entries, seal)


async def test_record_is_immediate_and_writes_are_batched() -> None:
    store = SlowStore(delay=0.05)
    rec = FlowRecorder(store, batch_size=50, interval=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(120):
        rec.record(event(flow_id=f"f{i}", at=T0 + i))
    assert loop.time() - start < 0.05  # 120 records queued without waiting for the (slow) store
    await rec.flush()
    assert rec.stats.written == 120 and rec.stats.recorded == 120 and rec.stats.dropped == 0
    assert len(store.sizes) <= 4 and max(store.sizes) == 50  # batches, not one write per record
    assert (await verify(store)).ok
    await rec.close()


async def test_full_queue_drops_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    store = SlowStore(delay=0.2)
    rec = FlowRecorder(store, capacity=10, batch_size=5, interval=0.0)
    with caplog.at_level(logging.WARNING, logger="jarmor.flows"):
        for i in range(30):
            rec.record(event(flow_id=f"f{i}"))
    assert rec.stats.dropped == 20 and rec.stats.recorded == 10
    assert sum("dropped" in r.message for r in caplog.records) == 1  # rate-limited: logged once, not 20 times
    await rec.close()
    assert rec.stats.written == 10 and len(await store.scan()) == 10


async def test_failed_batch_is_retried() -> None:
    store = SlowStore(fail=2)
    rec = FlowRecorder(store, batch_size=10, interval=0.0, retries=3, backoff=0.0)
    for i in range(5):
        rec.record(event(flow_id=f"f{i}"))
    await rec.flush()
    assert rec.stats.written == 5 and rec.stats.failed_batches == 2 and rec.stats.dropped == 0


async def test_batch_refused_after_every_retry_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    store = SlowStore(fail=100)
    rec = FlowRecorder(store, batch_size=10, interval=0.0, retries=2, backoff=0.0)
    with caplog.at_level(logging.WARNING, logger="jarmor.flows"):
        rec.record(event())
        await rec.flush()
    assert rec.stats.dropped == 1 and rec.stats.failed_batches == 3 and rec.stats.written == 0
    assert any("failed" in r.message for r in caplog.records)


async def test_close_flushes_and_later_records_are_dropped() -> None:
    store = SlowStore()
    rec = FlowRecorder(store, interval=10.0)  # would wait long for a fuller batch: close must not
    rec.record(event())
    await asyncio.wait_for(rec.close(), 2)
    assert len(await store.scan()) == 1
    rec.record(event())
    assert rec.stats.dropped == 1


async def test_disabled_recorder_records_nothing() -> None:
    store = SlowStore()
    rec = FlowRecorder(store, enabled=False)
    rec.record(event())
    await rec.close()
    assert await store.scan() == [] and rec.stats.recorded == 0


def test_record_without_an_event_loop_is_written_by_flush() -> None:
    store = SlowStore()
    rec = FlowRecorder(store)
    rec.record(event())  # no running loop: queued, no error
    asyncio.run(rec.flush())
    assert rec.stats.written == 1


async def test_record_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    rec = FlowRecorder(SlowStore())
    rec._queue = None  # type: ignore[assignment]  # any internal failure
    with caplog.at_level(logging.ERROR, logger="jarmor.flows"):
        rec.record(event())  # logged, not raised
    assert any("could not queue" in r.message for r in caplog.records)


async def test_an_unreachable_store_is_logged_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12.4's sibling: the database down means one log line when found and one when it is back, not one
    per batch and retry."""
    store = SlowStore(fail=3 * 4, error=StoreUnavailable)
    rec = FlowRecorder(store, batch_size=1, interval=0.0, retries=2, backoff=0.0)
    with caplog.at_level(logging.INFO, logger="jarmor.flows"):
        for i in range(5):  # four batches fail every attempt, the fifth is written
            rec.record(event(flow_id=f"f{i}"))
            await rec.flush()
    assert rec.stats.dropped == 4 and rec.stats.written == 1 and rec.stats.failed_batches == 12
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("flow recorder: the store")]
    assert len(messages) == 2 and "unreachable" in messages[0] and "reachable again" in messages[1]
    assert sum("dropped (" in r.getMessage() for r in caplog.records) == 1  # drops: rate-limited as ever
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
    await rec.close()

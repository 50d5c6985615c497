"""Worker for the cross-process append race: a freshly spawned interpreter with its own store and recorder."""

from __future__ import annotations

import asyncio
from typing import Any

from jarmor.governance.recorder import FlowRecorder
from jarmor.governance.records import FlowEvent
from jarmor.store import open_store


async def _append(url: str, worker: int, n: int, barrier: Any) -> int:
    store = open_store(url)
    try:
        # batch_size 7: many small batches, so appenders interleave
        recorder = FlowRecorder(store.flows, batch_size=7, interval=0.0)
        barrier.wait()
        for i in range(n):
            recorder.record(FlowEvent(flow_id=f"w{worker}-{i // 3}", stage="par", outcome="pushed",
                                      at=1_700_000_000 + i, client_id=f"c{worker}"))
            if i % 5 == 0:
                await asyncio.sleep(0)  # let the writer run while more records arrive
        await recorder.close()
        return recorder.stats.written
    finally:
        await store.close()


def run(url: str, worker: int, n: int, barrier: Any, results: Any) -> None:
    try:
        results.put((worker, asyncio.run(_append(url, worker, n, barrier))))
    except BaseException as exc:
        barrier.abort()
        results.put((worker, repr(exc)))
        raise

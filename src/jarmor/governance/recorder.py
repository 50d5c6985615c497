"""Writing flow records off the request path: a bounded in-memory queue drained in batches by one task.

``FlowRecorder.record`` is called by the server adapter at each hop. It appends to a list and returns — no
I/O, no await, no exception — so the recorder can never block or fail a flow. A background task (started on
the first record, in the running event loop) wakes when records arrive, waits ``interval`` seconds for more
to accumulate (or until ``batch_size`` are waiting), and appends them to the ``FlowRecordStore`` as one batch:
one transaction per batch instead of one per hop is what makes recording cheap (see ``store.sql.flows``).

Failure handling, in order of preference:

* a failed append is retried (``retries`` times, with backoff) with the same batch; every event carries an
  ``event_id``, so a batch that was in fact committed before the failure was reported is de-duplicated when
  flows are summarized;
* the queue is bounded (``capacity``): when the store cannot keep up, new records are *dropped* — counted in
  ``stats.dropped`` and logged (the first drop at once, then at most every ``log_interval`` seconds) — rather
  than growing memory or slowing requests;
* an unreachable store (``StoreUnavailable``: the database is down) is logged once when it is found and once
  when a batch is written again, not per batch or retry;
* ``close`` (server shutdown) flushes what is queued; records still queued when a process is killed are lost,
  at most ``interval`` seconds' worth plus one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..store.base import FlowRecordStore, StoreUnavailable
from .records import FlowEvent, seal

log = logging.getLogger("jarmor.flows")


@dataclass(slots=True)
class RecorderStats:
    recorded: int = 0  # accepted into the queue
    written: int = 0  # appended to the store
    dropped: int = 0  # lost: queue full, or the store refused a batch after every retry
    failed_batches: int = 0  # append attempts that raised
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "recorded": self.recorded,
            "written": self.written,
            "dropped": self.dropped,
            "failed_batches": self.failed_batches,
            "batches": self.batches,
        }


class FlowRecorder:
    def __init__(
        self,
        store: FlowRecordStore,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        interval: float = 0.2,
        retries: int = 3,
        backoff: float = 0.5,
        log_interval: float = 10.0,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        after_write: Callable[[], Awaitable[None]] | None = None,
        observe: Callable[[FlowEvent], None] | None = None,
    ) -> None:
        self._store = store
        self._after_write = after_write  # e.g. ``Checkpointer.after_write``: sign the head when due
        self._observe = observe  # sees every event, recorded or not (metrics)
        self.capacity = max(1, capacity)
        self.batch_size = max(1, batch_size)
        self.interval = max(0.0, interval)
        self.retries = max(0, retries)
        self.backoff = backoff
        self.log_interval = log_interval
        self.enabled = enabled
        self._clock = clock
        self._queue: list[FlowEvent] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._flushing = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_drop_log = float("-inf")
        self._drops_unlogged = 0
        self._unreachable = False  # the store was found unreachable and has not taken a batch since
        self.stats = RecorderStats()

    # -- the hot path ------------------------------------------------------------------------------------

    def record(self, event: FlowEvent) -> None:
        """Queue ``event``; never blocks, never raises (a full queue drops it, counted and logged)."""
        if self._observe is not None:
            try:
                self._observe(event)
            except Exception:  # observing must never fail a flow
                log.exception("flow recorder: observing a record failed")
        if not self.enabled:
            return
        try:
            if len(self._queue) >= self.capacity or self._closed:
                self._dropped(1, "the flow record queue is full" if not self._closed else "the recorder is closed")
                return
            self._queue.append(event)
            self.stats.recorded += 1
            self._idle.clear()
            self._wake.set()
            if self._task is None or self._task.done():
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    return  # no event loop (a command-line tool): ``flush`` writes the queue
                self._task = loop.create_task(self._run(), name="jarmor-flow-recorder")
        except Exception:  # recording must never fail a flow
            log.exception("flow recorder: could not queue a record")

    def _dropped(self, n: int, why: str) -> None:
        self.stats.dropped += n
        self._drops_unlogged += n
        now = self._clock()
        if now - self._last_drop_log >= self.log_interval:
            log.warning(
                "flow recorder: %d record(s) dropped (%s); %d dropped in total", self._drops_unlogged, why,
                self.stats.dropped,
            )
            self._last_drop_log = now
            self._drops_unlogged = 0

    # -- the writer --------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._queue) < self.batch_size and not self._flushing and self.interval:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full_or_flush(), self.interval)
            batch = self._queue[: self.batch_size]
            del self._queue[: self.batch_size]
            await self._write(batch)

    async def _full_or_flush(self) -> None:
        while len(self._queue) < self.batch_size and not self._flushing:
            self._wake.clear()
            await self._wake.wait()

    async def _write(self, batch: list[FlowEvent]) -> None:
        entries = [ev.entry() for ev in batch]
        for attempt in range(self.retries + 1):
            try:
                await self._store.append(entries, seal)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.failed_batches += 1
                outage = isinstance(exc, StoreUnavailable)
                if outage and not self._unreachable:
                    self._unreachable = True
                    log.error("flow recorder: the store is unreachable (%s); records are retried, then dropped, "
                              "until it is back", exc)
                if attempt < self.retries and not self._closed:
                    if not outage:
                        log.warning("flow recorder: appending %d record(s) failed (%s); retrying", len(batch), exc)
                    await asyncio.sleep(self.backoff * (2**attempt))
                    continue
                if not outage:
                    log.error("flow recorder: appending %d record(s) failed: %s", len(batch), exc)
                self._dropped(len(batch), "the store refused them" if not outage else "the store is unreachable")
                return
            self.stats.written += len(batch)
            self.stats.batches += 1
            if self._unreachable:
                self._unreachable = False
                log.warning("flow recorder: the store is reachable again (%d record(s) dropped in total)",
                            self.stats.dropped)
            if self._after_write is not None:
                await self._after_write()
            return

    # -- control -----------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def flush(self) -> None:
        """Return once every record queued so far is written (or dropped)."""
        if self._task is None or self._task.done():
            if self._queue:
                batch, self._queue = self._queue, []
                for i in range(0, len(batch), self.batch_size):
                    await self._write(batch[i : i + self.batch_size])
            return
        self._flushing += 1
        try:
            self._wake.set()
            while self._queue or not self._idle.is_set():
                self._wake.set()
                await self._idle.wait()
        finally:
            self._flushing -= 1

    async def close(self, timeout: float = 30.0) -> None:
        """Flush (for at most ``timeout`` seconds), then stop the writer; later records are dropped (counted)."""
        if self._closed:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout=timeout)
        except TimeoutError:
            log.error("flow recorder: %d record(s) not written at shutdown", len(self._queue))
            self._dropped(len(self._queue), "shutdown")
            self._queue.clear()
        finally:
            self._closed = True
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None

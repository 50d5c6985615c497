"""Where per-flow context waits for the callback (C12). ``take`` consumes: a flow is handled exactly once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from .models import FlowState


class FlowStateStore(Protocol):
    """Storage for pending flows, keyed by ``state``.

    ``get`` reads a flow without consuming it: a callback is judged against the flow first, and only an
    authentic response for it consumes it, so a forged callback injected into the user agent cannot cancel
    the login the real response will complete. ``take`` must be an atomic get-and-delete (``GETDEL``,
    ``DELETE ... RETURNING``) so two concurrent callbacks for one flow cannot both succeed (RFC 6749 §10.12,
    JARM §2.4 step 2). Both may return a flow past its ``expires_at``; the caller checks. ``was_consumed``
    only refines the error reason and may always answer ``False``.
    """

    def put(self, flow: FlowState) -> None: ...

    def get(self, state: str, now: int) -> FlowState | None: ...

    def take(self, state: str, now: int) -> FlowState | None: ...

    def was_consumed(self, state: str, now: int) -> bool: ...


class MemoryFlowStateStore:
    """A bounded in-process store (single process only). Oldest flows are evicted when full."""

    def __init__(self, *, max_entries: int = 10_000, tombstone_ttl: int = 3600) -> None:
        self._flows: OrderedDict[str, FlowState] = OrderedDict()
        self._consumed: OrderedDict[str, int] = OrderedDict()
        self._max = max_entries
        self._tombstone_ttl = tombstone_ttl
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._flows)

    def put(self, flow: FlowState) -> None:
        with self._lock:
            self._purge(flow.created_at)
            self._flows[flow.state] = flow
            while len(self._flows) > self._max:
                self._flows.popitem(last=False)

    def get(self, state: str, now: int) -> FlowState | None:
        with self._lock:
            return self._flows.get(state)

    def take(self, state: str, now: int) -> FlowState | None:
        with self._lock:
            flow = self._flows.pop(state, None)
            if flow is not None:
                self._consumed[state] = now + self._tombstone_ttl
                while len(self._consumed) > self._max:
                    self._consumed.popitem(last=False)
            return flow

    def was_consumed(self, state: str, now: int) -> bool:
        with self._lock:
            until = self._consumed.get(state)
            return until is not None and until >= now

    def _purge(self, now: int) -> None:
        # Both maps are (nearly) ordered by time, so expired entries sit at the front.
        while self._flows and next(iter(self._flows.values())).expires_at < now:
            self._flows.popitem(last=False)
        while self._consumed and next(iter(self._consumed.values())) < now:
            self._consumed.popitem(last=False)

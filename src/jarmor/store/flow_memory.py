"""In-process ``FlowRecordStore``: for tests, embedding and the in-process demo.

``append`` never awaits, so within one event loop a batch is chained atomically (the same guarantee the SQL
store gets from its transaction). Rows are plain frozen records; ``tamper`` exists for tests of verification.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .base import GENESIS_HASH, FlowCheckpoint, FlowEntry, FlowRecordRow, Seal


class MemoryFlowRecordStore:
    def __init__(self) -> None:
        self._rows: list[FlowRecordRow] = []
        self._head: tuple[int, str] = (0, GENESIS_HASH)
        self._checkpoints: dict[int, FlowCheckpoint] = {}

    async def append(self, entries: Sequence[FlowEntry], seal: Seal) -> int:
        seq, prev = self._head
        rows: list[FlowRecordRow] = []
        for entry in entries:
            seq += 1
            body, digest = seal(seq, prev, entry)
            rows.append(
                FlowRecordRow(
                    seq, entry.at, entry.flow_id, entry.stage, entry.outcome, entry.client_id, body, prev, digest
                )
            )
            prev = digest
        self._rows.extend(rows)
        self._head = (seq, prev)
        return seq

    async def head(self) -> tuple[int, str]:
        return self._head

    async def scan(self, *, after_seq: int = 0, since: int | None = None, limit: int = 1000) -> list[FlowRecordRow]:
        out: list[FlowRecordRow] = []
        start = bisect.bisect_right(self._rows, after_seq, key=lambda r: r.seq)
        for row in self._rows[start:]:
            if since is None or row.at >= since:
                out.append(row)
                if len(out) >= limit:
                    break
        return out

    async def for_flows(
        self, *, since: int | None = None, client_id: str | None = None, limit: int = 1000
    ) -> list[FlowRecordRow]:
        newest: dict[str, int] = {}
        for row in self._rows:
            if (since is None or row.at >= since) and (client_id is None or row.client_id == client_id):
                newest[row.flow_id] = max(newest.get(row.flow_id, 0), row.seq)
        chosen = set(sorted(newest, key=newest.__getitem__, reverse=True)[:limit])
        return [row for row in self._rows if row.flow_id in chosen]

    async def of_flow(self, flow_id: str) -> list[FlowRecordRow]:
        return [row for row in self._rows if row.flow_id == flow_id]

    async def last_seen(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self._rows:
            if row.client_id is not None:
                out[row.client_id] = max(out.get(row.client_id, 0), row.at)
        return out

    async def add_checkpoint(self, checkpoint: FlowCheckpoint) -> None:
        self._checkpoints.setdefault(checkpoint.seq, checkpoint)

    async def checkpoints(self, *, after_seq: int = 0, limit: int = 1000) -> list[FlowCheckpoint]:
        return [self._checkpoints[s] for s in sorted(self._checkpoints) if s > after_seq][:limit]

    async def last_checkpoint(self) -> FlowCheckpoint | None:
        return self._checkpoints[max(self._checkpoints)] if self._checkpoints else None

    async def archive_through(self, seq: int) -> int:
        before = len(self._rows)
        self._rows = [r for r in self._rows if r.seq > seq]
        self._checkpoints = {s: c for s, c in self._checkpoints.items() if s >= seq}
        return before - len(self._rows)

    # -- for tests of verification only: what an attacker with write access to the database could do ---------

    def tamper(self, seq: int, /, **changes: Any) -> None:
        """Replace fields of the record ``seq`` (``delete=True`` removes it); rows stay ordered by ``seq``, as
        an SQL ``ORDER BY seq`` would return them."""
        for i, row in enumerate(self._rows):
            if row.seq == seq:
                if changes.pop("delete", False):
                    del self._rows[i]
                else:
                    self._rows[i] = replace(row, **changes)
                self._rows.sort(key=lambda r: r.seq)
                return
        raise KeyError(seq)

    def set_head(self, seq: int, digest: str) -> None:
        self._head = (seq, digest)

    def rows(self) -> list[FlowRecordRow]:
        return list(self._rows)

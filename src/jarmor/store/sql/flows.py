"""SQL ``FlowRecordStore`` (SQLite and PostgreSQL) over ``flow_schema``: one hash chain, many writers.

Records are never updated; the only delete is retention (``archive_through``, run by ``jarmor flows archive``
after it has written the records out).

Concurrency: every node and worker appends to the *same* chain. An append is one transaction that

1. bumps the chain head — ``UPDATE flow_chain SET seq = seq + n ... RETURNING seq, hash`` — which locks the
   head row until commit (PostgreSQL: a row lock; a concurrent appender's ``UPDATE`` waits, then re-reads the
   committed row under READ COMMITTED. SQLite: ``BEGIN IMMEDIATE`` already holds the database write lock);
2. seals the batch (canonical body and hash of each record, chained from the head's hash) and inserts it
   (``executemany``; ``seq`` is the primary key, so a logic error could never fork the chain silently);
3. stores the new head hash, and commits.

So batches are totally ordered and each links to the one committed before it. On PostgreSQL the transaction
also sets ``idle_in_transaction_session_timeout``: an appender whose process stalls mid-append (a blocked event
loop, a paused VM) is disconnected by the server instead of holding the chain head, and every other node's
records, indefinitely; its batch fails and the recorder retries it. The lock is held for one batch
(hundreds of records, a few milliseconds), and each process appends at most one batch at a time (the recorder
batches in memory), so contention stays low. The head row is created on first use (``INSERT ... ON CONFLICT
DO NOTHING``), which both a migrated and a freshly created database need. Per-node chains merged on read
were the alternative; a single chain was chosen because it needs no node identity, has one order to verify,
and a whole node's chain cannot disappear unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Integer, Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.sql.elements import BindParameter

from .. import flow_schema
from ..base import GENESIS_HASH, FlowCheckpoint, FlowEntry, FlowRecordRow, Seal, StoreError
from .executor import AnyRow, Executor, Upsert

CHAIN = "main"
STALL_TIMEOUT = 10.0  # seconds an append transaction may sit idle (PostgreSQL) before the server ends it
_NO_LIMIT = 2**62
_COLS = ("seq", "at", "flow_id", "stage", "outcome", "client_id", "body", "prev_hash", "hash")


def _row(r: AnyRow) -> FlowRecordRow:
    seq, at, flow_id, stage, outcome, client_id, body, prev_hash, digest = r
    return FlowRecordRow(int(seq), int(at), flow_id, stage, outcome, client_id, body, prev_hash, digest)


class SqlFlowRecordStore:
    """Append-only: this class has no statement that updates or deletes a record (only the chain head)."""

    def __init__(self, db: Executor, upsert: Callable[[Table], Upsert], dialect: str = "sqlite") -> None:
        self._db = db
        self._guard = (
            text(f"SET LOCAL idle_in_transaction_session_timeout = '{int(STALL_TIMEOUT * 1000)}ms'")
            if dialect == "postgresql" else None
        )
        t = flow_schema.flow_records
        h = flow_schema.flow_chain
        chain: BindParameter[str] = bindparam("chain_id")
        self._bump = (
            update(h)
            .where(h.c.chain == chain)
            .values(seq=h.c.seq + bindparam("n", type_=BigInteger))
            .returning(h.c.seq, h.c.hash)
        )
        self._init = upsert(h).values(chain=chain, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing(
            index_elements=[h.c.chain]
        )
        self._set_hash = update(h).where(h.c.chain == chain).values(hash=bindparam("head_hash"))
        self._head = select(h.c.seq, h.c.hash).where(h.c.chain == chain)
        self._insert = insert(t).values({name: bindparam(f"p_{name}") for name in _COLS})
        cols = [t.c[name] for name in _COLS]
        limit: BindParameter[int] = bindparam("limit", type_=Integer)
        since: BindParameter[int] = bindparam("since", type_=BigInteger)
        self._scan = (
            select(*cols)
            .where(t.c.seq > bindparam("after", type_=BigInteger), t.c.at >= since)
            .order_by(t.c.seq)
            .limit(limit)
        )
        active = select(t.c.flow_id).where(t.c.at >= since)
        newest = func.max(t.c.seq).desc()
        recent_all = active.group_by(t.c.flow_id).order_by(newest).limit(limit)
        recent_client = (
            active.where(t.c.client_id == bindparam("client")).group_by(t.c.flow_id).order_by(newest).limit(limit)
        )
        self._flows_all = select(*cols).where(t.c.flow_id.in_(recent_all)).order_by(t.c.seq)
        self._flows_client = select(*cols).where(t.c.flow_id.in_(recent_client)).order_by(t.c.seq)
        self._of_flow = select(*cols).where(t.c.flow_id == bindparam("flow")).order_by(t.c.seq)
        self._last_seen = (
            select(t.c.client_id, func.max(t.c.at)).where(t.c.client_id.is_not(None)).group_by(t.c.client_id)
        )
        c = flow_schema.flow_checkpoints
        self._add_checkpoint = upsert(c).values(
            seq=bindparam("seq", type_=BigInteger), hash=bindparam("hash"), at=bindparam("at", type_=BigInteger),
            jws=bindparam("jws"),
        ).on_conflict_do_nothing(index_elements=[c.c.seq])
        cp_cols = (c.c.seq, c.c.hash, c.c.at, c.c.jws)
        self._checkpoints = (
            select(*cp_cols).where(c.c.seq > bindparam("after", type_=BigInteger)).order_by(c.c.seq).limit(limit)
        )
        self._last_checkpoint = select(*cp_cols).order_by(c.c.seq.desc()).limit(1)
        through: BindParameter[int] = bindparam("through", type_=BigInteger)
        self._archive_records = delete(t).where(t.c.seq <= through)
        self._archive_checkpoints = delete(c).where(c.c.seq < through)

    async def append(self, entries: Sequence[FlowEntry], seal: Seal) -> int:
        n = len(entries)
        if n == 0:
            return (await self.head())[0]
        async with self._db.transaction() as tx:
            if self._guard is not None:
                await tx.write(self._guard, {})
            bumped = await tx.first(self._bump, {"chain_id": CHAIN, "n": n})
            if bumped is None:
                await tx.write(self._init, {"chain_id": CHAIN})
                bumped = await tx.first(self._bump, {"chain_id": CHAIN, "n": n})
                if bumped is None:
                    raise StoreError("the flow record chain head cannot be created")
            last = int(bumped[0])
            seq, prev = last - n, str(bumped[1])
            rows: list[dict[str, Any]] = []
            for entry in entries:
                seq += 1
                body, digest = seal(seq, prev, entry)
                rows.append(
                    {
                        "p_seq": seq,
                        "p_at": entry.at,
                        "p_flow_id": entry.flow_id,
                        "p_stage": entry.stage,
                        "p_outcome": entry.outcome,
                        "p_client_id": entry.client_id,
                        "p_body": body,
                        "p_prev_hash": prev,
                        "p_hash": digest,
                    }
                )
                prev = digest
            await tx.write_many(self._insert, rows)
            await tx.write(self._set_hash, {"chain_id": CHAIN, "head_hash": prev})
        return last

    async def head(self) -> tuple[int, str]:
        row = await self._db.first(self._head, {"chain_id": CHAIN})
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    async def scan(self, *, after_seq: int = 0, since: int | None = None, limit: int = 1000) -> list[FlowRecordRow]:
        params = {"after": after_seq, "since": since if since is not None else -_NO_LIMIT, "limit": limit}
        return [_row(r) for r in await self._db.all(self._scan, params)]

    async def for_flows(
        self, *, since: int | None = None, client_id: str | None = None, limit: int = 1000
    ) -> list[FlowRecordRow]:
        params: dict[str, Any] = {"since": since if since is not None else -_NO_LIMIT, "limit": limit}
        if client_id is None:
            rows = await self._db.all(self._flows_all, params)
        else:
            rows = await self._db.all(self._flows_client, {**params, "client": client_id})
        return [_row(r) for r in rows]

    async def of_flow(self, flow_id: str) -> list[FlowRecordRow]:
        return [_row(r) for r in await self._db.all(self._of_flow, {"flow": flow_id})]

    async def last_seen(self) -> dict[str, int]:
        return {str(cid): int(at) for cid, at in await self._db.all(self._last_seen, {})}

    async def add_checkpoint(self, checkpoint: FlowCheckpoint) -> None:
        await self._db.write(
            self._add_checkpoint,
            {"seq": checkpoint.seq, "hash": checkpoint.hash, "at": checkpoint.at, "jws": checkpoint.jws},
        )

    async def checkpoints(self, *, after_seq: int = 0, limit: int = 1000) -> list[FlowCheckpoint]:
        rows = await self._db.all(self._checkpoints, {"after": after_seq, "limit": limit})
        return [FlowCheckpoint(int(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]

    async def last_checkpoint(self) -> FlowCheckpoint | None:
        r = await self._db.first(self._last_checkpoint, {})
        return None if r is None else FlowCheckpoint(int(r[0]), str(r[1]), int(r[2]), str(r[3]))

    async def archive_through(self, seq: int) -> int:
        async with self._db.transaction() as tx:
            removed = await tx.write(self._archive_records, {"through": seq})
            await tx.write(self._archive_checkpoints, {"through": seq})
        return removed

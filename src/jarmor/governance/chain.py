"""Verification of the flow record hash chain (``records`` explains the chain; this module checks it).

``ChainVerifier`` is fed the stored rows in ``seq`` order (it holds one row at a time, so a chain of any
length verifies in constant memory) and reports each problem at the exact record where it shows:

* ``edited``    — the record's body no longer hashes to its stored hash, or an indexed column disagrees with
                  the body (a field was changed in place);
* ``unlinked``  — the record's ``prev_hash`` is not the stored hash of the record before it (that record was
                  changed *and* re-hashed, or records were swapped or inserted);
* ``reordered`` — the body names another ``seq`` than the row holds (rows were renumbered or moved);
* ``missing``   — ``seq`` values were skipped (records deleted, including from the start of the chain);
* ``truncated`` — the chain head records a later ``seq`` than the last stored record (deleted from the end),
                  or the last record is not the one the head names;
* ``anchor``    — an externally kept ``seq:hash`` does not match the stored record at that ``seq``;
* ``checkpoint`` — a signed checkpoint (``checkpoints``) does not verify, or names a record whose stored hash
                  differs, or a record that is not in the chain;
* ``unsigned``  — records older than the grace period lie beyond the last valid signed checkpoint.

A database writer who rewrites the whole chain *and* the head is caught by the signed checkpoints (unless
they hold a server signing key too), or by an anchor kept elsewhere (``jarmor flows export``, the printed head).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..store.base import GENESIS_HASH, FlowRecordRow, FlowRecordStore
from .checkpoints import CheckpointCheck
from .records import chain_hash

MAX_PROBLEMS = 100
_COLUMNS = ("at", "flow_id", "stage", "outcome", "client_id")


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    kind: str
    message: str
    flow_id: str | None = None

    def __str__(self) -> str:
        flow = f" (flow {self.flow_id})" if self.flow_id else ""
        return f"record {self.seq}{flow}: {self.kind}: {self.message}"


@dataclass(slots=True)
class ChainReport:
    records: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[ChainProblem] = field(default_factory=list)
    more_problems: int = 0
    checkpoints: int | None = None  # valid signed checkpoints (None: not checked)
    archived_through: int = 0  # the stored chain starts after an archive that ends at this record
    last_checkpoint: int = 0  # the highest seq a valid checkpoint covers

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "last": {"seq": self.last_seq, "hash": self.last_hash},
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "problems": [
                {"seq": p.seq, "kind": p.kind, "message": p.message, "flow_id": p.flow_id} for p in self.problems
            ],
            "more_problems": self.more_problems,
            "checkpoints": self.checkpoints,
            "last_checkpoint": self.last_checkpoint,
            "archived_through": self.archived_through,
        }


class ChainVerifier:
    """Feed rows in ``seq`` order with ``feed``; ``finish`` with the stored chain head."""

    def __init__(
        self, anchors: Mapping[int, str] | None = None, checkpoints: CheckpointCheck | None = None
    ) -> None:
        self.report = ChainReport()
        self._expected = 1
        self._prev: str | None = GENESIS_HASH  # None: the previous record is missing, nothing to link to
        self._anchors = dict(anchors or {})
        self._checkpoints = checkpoints
        self._tail: tuple[int, int] | None = None  # (first seq, oldest at) of records no checkpoint covers yet

    def start_after(self, first_seq: int) -> bool:
        """The stored chain starts at ``first_seq`` after an archive (``archive.py``): start from the newest
        valid signed checkpoint before it, which the archive's cut left in place; records between the two are
        then reported missing. False when no valid checkpoint precedes it."""
        check = self._checkpoints
        if check is None:
            return False
        candidates = sorted((s for s in check.checkpoints if s < first_seq), reverse=True)
        seq = next((s for s in candidates if check.signature_problem(check.checkpoints[s]) is None), None)
        if seq is None:
            return False
        cp = check.checkpoints[seq]
        del check.checkpoints[seq]
        check.valid.add(seq)
        self._expected, self._prev = seq + 1, cp.hash
        self.report.last_checkpoint = self.report.archived_through = seq
        self.report.last_seq, self.report.last_hash = seq, cp.hash  # everything up to here was archived
        return True

    def problem(self, seq: int, kind: str, message: str, flow_id: str | None = None) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(ChainProblem(seq, kind, message, flow_id))
        else:
            self.report.more_problems += 1

    def feed(self, row: FlowRecordRow) -> None:
        rep = self.report
        rep.records += 1
        if row.seq > self._expected:
            gap = f"{self._expected}" if row.seq == self._expected + 1 else f"{self._expected}-{row.seq - 1}"
            self.problem(self._expected, "missing", f"record(s) {gap} are missing (deleted)")
            self._prev = None
        elif row.seq < self._expected:  # only if rows are not unique per seq (never from a primary key)
            self.problem(row.seq, "reordered", f"appears after record {self._expected - 1}")
        flow_id: str | None = row.flow_id
        try:
            body: Any = orjson.loads(row.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            self.problem(row.seq, "edited", "the body is not a JSON object", flow_id)
        else:
            flow_id = str(body.get("flow_id", row.flow_id))
            if chain_hash(row.prev_hash, row.body.encode("utf-8")) != row.hash:
                self.problem(row.seq, "edited", "the body does not match the record's hash", flow_id)
            if body.get("seq") != row.seq:
                self.problem(row.seq, "reordered", f"the record says it is record {body.get('seq')}", flow_id)
            changed = [c for c in _COLUMNS if body.get(c) != getattr(row, c)]
            if changed:
                self.problem(
                    row.seq, "edited", f"column(s) {', '.join(changed)} differ from the hashed body", flow_id
                )
        if self._prev is not None and row.prev_hash != self._prev:
            self.problem(
                row.seq,
                "unlinked",
                f"does not link to record {row.seq - 1} (that record was altered and re-hashed, "
                "or records were swapped or inserted)",
                flow_id,
            )
        anchored = self._anchors.pop(row.seq, None)
        if anchored is not None and anchored != row.hash:
            self.problem(row.seq, "anchor", f"hash {row.hash} differs from the anchor {anchored}", flow_id)
        self._prev = row.hash
        self._expected = max(self._expected, row.seq + 1)
        rep.last_seq, rep.last_hash = row.seq, row.hash
        if self._checkpoints is not None:
            self._check_checkpoint(row, flow_id)

    def _check_checkpoint(self, row: FlowRecordRow, flow_id: str | None) -> None:
        check = self._checkpoints
        assert check is not None
        first, oldest = self._tail or (row.seq, row.at)
        self._tail = (first, min(oldest, row.at))
        cp = check.checkpoints.pop(row.seq, None)
        if cp is None:
            return
        problem = check.signature_problem(cp)
        if problem is None and cp.hash != row.hash:
            problem = f"the record's hash {row.hash[:16]}... differs from the signed {cp.hash[:16]}... (rewritten)"
        if problem is not None:
            self.problem(row.seq, "checkpoint", problem, flow_id)
            return
        check.valid.add(row.seq)
        self.report.last_checkpoint = row.seq
        self._tail = None

    def finish(self, head: tuple[int, str]) -> ChainReport:
        rep = self.report
        rep.head_seq, rep.head_hash = head
        if rep.head_seq > rep.last_seq:
            gap = f"{rep.last_seq + 1}" if rep.head_seq == rep.last_seq + 1 else f"{rep.last_seq + 1}-{rep.head_seq}"
            self.problem(
                rep.last_seq + 1, "truncated", f"record(s) {gap} are missing: the chain head records {rep.head_seq}"
            )
        elif rep.head_seq == rep.last_seq and rep.records and rep.head_hash != rep.last_hash:
            self.problem(rep.last_seq, "truncated", "the last record is not the one the chain head names")
        elif rep.head_seq < rep.last_seq:
            self.problem(rep.head_seq + 1, "unlinked", f"records after the chain head ({rep.head_seq}) exist")
        for seq, digest in sorted(self._anchors.items()):
            self.problem(seq, "anchor", f"the anchored record {seq} ({digest[:16]}...) is not in the chain")
        check = self._checkpoints
        if check is not None:
            for seq in sorted(check.checkpoints):
                self.problem(seq, "checkpoint", f"a signed checkpoint names record {seq}, which is not in the chain")
            rep.checkpoints = len(check.valid)
            if self._tail is not None and self._tail[1] < check.now - check.grace:
                first, oldest = self._tail
                self.problem(
                    first,
                    "unsigned",
                    f"records {first}-{rep.last_seq} (the oldest from {oldest}) are covered by no valid signed "
                    "checkpoint: checkpoints were deleted or the chain was rewritten",
                )
        return rep


async def stored_rows(store: FlowRecordStore, page: int = 5000) -> AsyncIterator[FlowRecordRow]:
    after = 0
    while True:
        rows = await store.scan(after_seq=after, limit=page)
        for row in rows:
            yield row
        if len(rows) < page:
            return
        after = rows[-1].seq


async def verify(
    store: FlowRecordStore,
    *,
    anchors: Mapping[int, str] | None = None,
    checkpoints: CheckpointCheck | None = None,
    archived: Iterable[FlowRecordRow] = (),
    progress: Callable[[int], None] | None = None,
) -> ChainReport:
    """Verify the whole stored chain against its head (and any external ``anchors``: seq -> hash), and
    against the signed checkpoints when ``checkpoints`` carries the server keys to check them with.

    ``archived``: records moved out by ``jarmor flows archive`` (oldest first), verified as the chain's
    start; without them, a stored chain that starts after an archive must link to a valid checkpoint.
    """
    if checkpoints is not None:
        await checkpoints.load(store)  # before the head: a checkpoint beyond it then means a truncated chain
    head = await store.head()
    verifier = ChainVerifier(anchors, checkpoints)
    fed_archive = False
    for row in archived:
        verifier.feed(row)
        fed_archive = True
        if progress is not None and verifier.report.records % 1000 == 0:
            progress(verifier.report.records)
    beyond = 0
    first = True
    async for row in stored_rows(store):
        if first and not fed_archive and row.seq > 1:
            verifier.start_after(row.seq)  # else: reported as missing records
        first = False
        if progress is not None and verifier.report.records % 1000 == 0:
            progress(verifier.report.records)
        if row.seq <= head[0]:
            verifier.feed(row)
        else:
            beyond = max(beyond, row.seq)  # appended while verifying, unless no head ever names it
    if first and not fed_archive and head[0] > 0:
        verifier.start_after(head[0] + 1)  # everything up to the head was archived
    report = verifier.finish(head)
    if beyond and beyond > (await store.head())[0]:
        verifier.problem(head[0] + 1, "unlinked", f"records up to {beyond} exist beyond the chain head")
    return report


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``jarmor flows verify``."""
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("an anchor is SEQ:HASH (a record number and its 64-hex-digit hash)")
    return int(seq), digest

"""Retention for the flow record chain: move old records to a file without losing verifiability.

``jarmor flows archive --before DATE -o FILE.jsonl`` cuts the chain at a *signed checkpoint* (``checkpoints``):
the newest checkpoint whose record was written before ``DATE``. It writes every stored record up to that
checkpoint, and the checkpoints among them, to the file — each record exactly as stored (body text, hashes), so
the file verifies by itself — makes the file durable, and only then deletes those records from the database
(``FlowRecordStore.archive_through``). The checkpoint at the cut stays in the database: the remaining chain
starts right after it, and ``chain.verify`` accepts a chain whose first record links to a valid signed
checkpoint (``start_after``). ``jarmor flows verify --archive FILE ...`` verifies archive files and the
database as one chain, oldest file first.

Why cut at a checkpoint: the database keeps a signed statement of the hash its first record links to, so
deleting records from the *start* of the chain without a checkpoint is still caught (``missing``).

File format: JSON lines, ``{"record": {seq, at, flow_id, stage, outcome, client_id, body, prev_hash, hash}}``
in chain order, then ``{"checkpoint": {seq, hash, at, jws}}`` for each checkpoint in the range.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson

from ..store.base import FlowCheckpoint, FlowRecordRow, FlowRecordStore
from .chain import stored_rows
from .checkpoints import stored_checkpoints

T = TypeVar("T")


class ArchiveError(Exception):
    """Nothing can be archived as asked (no checkpoint before the date, an unreadable archive file)."""


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    through_seq: int
    records: int
    checkpoints: int


async def cut_point(store: FlowRecordStore, before: int) -> FlowCheckpoint | None:
    """The newest checkpoint signed before ``before`` (epoch seconds): the record it names was written no
    later than it was signed, so every record up to it is older than ``before``."""
    best: FlowCheckpoint | None = None
    async for cp in stored_checkpoints(store):
        if cp.at < before:
            best = cp
    return best


async def archive(
    store: FlowRecordStore, before: int, out: BinaryIO, progress: Callable[[int, int], None] | None = None
) -> ArchiveResult:
    """Write the records up to the cut point to ``out`` (flushed and fsynced), then delete them;
    ``progress(written, total)`` as it goes."""
    cut = await cut_point(store, before)
    if cut is None:
        raise ArchiveError("no signed checkpoint covers records written before that date: nothing to archive")
    records = 0
    async for row in stored_rows(store):
        if row.seq > cut.seq:
            break
        out.write(orjson.dumps({"record": asdict(row)}) + b"\n")
        records += 1
        if progress is not None and records % 1000 == 0:
            progress(records, cut.seq)
    checkpoints = 0
    async for cp in stored_checkpoints(store):
        if cp.seq > cut.seq:
            break
        out.write(orjson.dumps({"checkpoint": asdict(cp)}) + b"\n")
        checkpoints += 1
    out.flush()
    os.fsync(out.fileno())
    if records == 0:
        raise ArchiveError(f"records up to {cut.seq} were archived already")
    await store.archive_through(cut.seq)
    return ArchiveResult(cut.seq, records, checkpoints)


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with path.open("rb") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield n, orjson.loads(line)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ArchiveError(f"cannot read the archive {path}: {exc}") from exc


def _item(path: Path, n: int, item: Any, kind: str) -> dict[str, Any] | None:
    if not isinstance(item, dict) or not ({"record", "checkpoint"} & set(item)):
        raise ArchiveError(f"{path}: line {n} is neither a record nor a checkpoint")
    value = item.get(kind)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ArchiveError(f"{path}: line {n}: a {kind} must be an object")
    return value


def _archived(paths: Iterable[Path], kind: str, make: Callable[..., T]) -> Iterator[T]:
    for path in paths:
        for n, item in _lines(path):
            value = _item(path, n, item, kind)
            if value is not None:
                try:
                    yield make(**value)
                except TypeError as exc:
                    raise ArchiveError(f"{path}: line {n}: {exc}") from exc


def archived_checkpoints(paths: Iterable[Path]) -> Iterator[FlowCheckpoint]:
    return _archived(paths, "checkpoint", FlowCheckpoint)


def archived_rows(paths: Iterable[Path]) -> Iterator[FlowRecordRow]:
    """The archived records, oldest file first, streamed (an archive of any size verifies in bounded memory)."""
    return _archived(paths, "record", FlowRecordRow)

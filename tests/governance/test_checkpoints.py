"""Signed checkpoints of the chain head: a whole-chain rewrite (records and head, consistently re-hashed) fails
verification with no anchor kept anywhere, unless the writer also holds a server signing key.

Run over every flow record store (memory, SQLite, PostgreSQL) with the tampering helpers of ``test_chain``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest

from jarmor.governance.archive import ArchiveError, archive, archived_checkpoints, archived_rows
from jarmor.governance.chain import verify
from jarmor.governance.checkpoints import CHECKPOINT_TYP, CheckpointCheck, Checkpointer, sign_checkpoint
from jarmor.governance.records import GENESIS_HASH, chain_hash
from jarmor.jose import JwkSet, generate_jwk, import_jwk, sign_jws
from jarmor.store.base import FlowCheckpoint
from jarmor.store.flow_memory import MemoryFlowRecordStore

from .conftest import T0, Flows
from .test_chain import _mem, delete, fill, set_head

KEY = generate_jwk("ES256")
OTHER = generate_jwk("ES256")
PUBLIC = JwkSet((import_jwk(KEY.public_dict(), allow_private=False),))


def checkpointer(flows: Flows, *, every: int = 5, interval: float = 3600.0, now: float = T0) -> Checkpointer:
    return Checkpointer(flows.store, lambda: (KEY, "ES256"), every=every, interval=interval, clock=lambda: now)


def check(now: float = T0 + 10, grace: float = 600) -> CheckpointCheck:
    return CheckpointCheck(PUBLIC, grace=grace, now=now)


async def rewrite_chain(flows: Flows, old: str, new: str) -> None:
    """What a database writer does to change history without breaking the links: edit every matching body,
    re-hash every record from the first edit on, and store the new head."""
    rows = await flows.store.scan(limit=10_000)
    prev = GENESIS_HASH
    for row in rows:
        body = row.body.replace(old, new)
        digest = chain_hash(prev, body.encode())
        if flows.sql is None:
            _mem(flows).tamper(row.seq, body=body, prev_hash=prev, hash=digest)
        else:
            flows.execute(
                "UPDATE flow_records SET body = :body, prev_hash = :prev, hash = :digest WHERE seq = :seq"
                if flows.sql.engine.dialect.name == "sqlite" else
                "UPDATE flow_records SET body = %(body)s, prev_hash = %(prev)s, hash = %(digest)s WHERE seq = %(seq)s",
                body=body, prev=prev, digest=digest, seq=row.seq,
            )
        prev = digest
    await set_head(flows, rows[-1].seq, prev)


async def delete_checkpoints(flows: Flows) -> None:
    if flows.sql is None:
        store = flows.store
        assert isinstance(store, MemoryFlowRecordStore)
        store._checkpoints.clear()
    else:
        flows.execute("DELETE FROM flow_checkpoints")


async def test_checkpoints_follow_the_record_count_and_time(flows_backend: Flows) -> None:
    cp = checkpointer(flows_backend, every=5)
    assert await cp.maybe_checkpoint() is None  # an empty chain has nothing to sign
    await fill(flows_backend, n=4)
    first = await cp.maybe_checkpoint()  # no checkpoint yet (a new or upgraded chain): sign at once
    assert first is not None and first.seq == 4
    await fill(flows_backend, n=4)
    assert await cp.maybe_checkpoint() is None  # 4 < every, and the interval has not passed
    await fill(flows_backend, n=1)
    second = await cp.maybe_checkpoint()
    assert second is not None and second.seq == 9
    assert await cp.maybe_checkpoint() is None  # nothing new since
    late = Checkpointer(flows_backend.store, lambda: (KEY, "ES256"), every=1000, interval=60, clock=lambda: T0 + 61)
    await fill(flows_backend, n=1)
    third = await late.maybe_checkpoint()  # learns seq 9's checkpoint from the store; 61 s after it
    assert third is not None and third.seq == 10
    assert [c.seq for c in await flows_backend.store.checkpoints()] == [4, 9, 10]
    assert [c.seq for c in await flows_backend.store.checkpoints(after_seq=4, limit=1)] == [9]
    assert (await flows_backend.store.last_checkpoint()) == third
    rep = await verify(flows_backend.store, checkpoints=check())
    assert rep.ok and rep.checkpoints == 3 and rep.last_checkpoint == 10


async def test_a_whole_chain_rewrite_fails_without_any_anchor(flows_backend: Flows) -> None:
    await fill(flows_backend)
    assert await checkpointer(flows_backend).maybe_checkpoint(force=True) is not None  # covers 1-10
    await rewrite_chain(flows_backend, '"user4"', '"mallory"')
    assert (await verify(flows_backend.store)).ok  # the hash chain alone cannot see it...
    rep = await verify(flows_backend.store, checkpoints=check())
    assert [(p.seq, p.kind) for p in rep.problems] == [(10, "checkpoint")]  # ...the signed head can
    assert "rewritten" in rep.problems[0].message


async def test_a_rewrite_that_deletes_the_checkpoints_leaves_an_unsigned_tail(flows_backend: Flows) -> None:
    await fill(flows_backend)
    await checkpointer(flows_backend).maybe_checkpoint(force=True)
    await rewrite_chain(flows_backend, '"user4"', '"mallory"')
    await delete_checkpoints(flows_backend)
    rep = await verify(flows_backend.store, checkpoints=check(now=T0 + 10_000, grace=600))
    assert [(p.seq, p.kind) for p in rep.problems] == [(1, "unsigned")]
    # recent records beyond the last checkpoint are normal: servers sign at most every interval
    assert (await verify(flows_backend.store, checkpoints=check(now=T0 + 10, grace=600))).ok


async def test_a_truncated_and_rehead_chain_is_caught_by_a_later_checkpoint(flows_backend: Flows) -> None:
    await fill(flows_backend)
    await checkpointer(flows_backend).maybe_checkpoint(force=True)  # covers 1-10
    rows = await flows_backend.store.scan()
    await delete(flows_backend, ">", 7)
    await set_head(flows_backend, 7, rows[6].hash)
    assert (await verify(flows_backend.store)).ok
    rep = await verify(flows_backend.store, checkpoints=check())
    assert (10, "checkpoint") in [(p.seq, p.kind) for p in rep.problems]


@pytest.mark.parametrize("forgery", ["other_key", "edited_claims", "wrong_typ"])
async def test_forged_checkpoints_do_not_verify(flows_backend: Flows, forgery: str) -> None:
    await fill(flows_backend)
    seq, digest = await flows_backend.store.head()
    if forgery == "other_key":
        jws = sign_checkpoint(seq, digest, T0, OTHER, "ES256").jws
    elif forgery == "edited_claims":
        jws = sign_checkpoint(seq, "0" * 64, T0, KEY, "ES256").jws
    else:
        jws = sign_jws({"seq": seq, "hash": digest, "iat": T0}, KEY, "ES256", typ="JWT")
    await flows_backend.store.add_checkpoint(FlowCheckpoint(seq, digest, T0, jws))
    rep = await verify(flows_backend.store, checkpoints=check(now=T0 + 10_000))
    kinds = [(p.seq, p.kind) for p in rep.problems]
    assert (seq, "checkpoint") in kinds and (1, "unsigned") in kinds


async def test_a_second_checkpoint_for_the_same_record_is_ignored(flows_backend: Flows) -> None:
    await fill(flows_backend)
    first = await checkpointer(flows_backend).maybe_checkpoint(force=True)
    assert first is not None
    await flows_backend.store.add_checkpoint(FlowCheckpoint(first.seq, first.hash, first.at + 1, "x.y.z"))
    assert await flows_backend.store.checkpoints() == [first]


def test_checkpoints_are_typed() -> None:
    cp = sign_checkpoint(3, "ab" * 32, T0, KEY, "ES256")
    header = orjson.loads(__import__("base64").urlsafe_b64decode(cp.jws.split(".")[0] + "=="))
    assert header["typ"] == CHECKPOINT_TYP
    assert list(itertools.islice(header, 1)) == ["alg"]


# --- retention: archive up to a signed checkpoint ----------------------------------------------------------------


async def _archived(flows: Flows, tmp_path: Path) -> Path:
    """Records 1-10 at T0..T0+9 with checkpoints at 5 (signed at T0+4) and 10; archive before T0+7."""
    await fill(flows, n=5)
    await checkpointer(flows, now=T0 + 4).maybe_checkpoint(force=True)
    await fill(flows, n=5)
    await checkpointer(flows, now=T0 + 9).maybe_checkpoint(force=True)
    path = tmp_path / "archive.jsonl"
    with path.open("xb") as out:
        result = await archive(flows.store, T0 + 7, out)
    assert (result.through_seq, result.records, result.checkpoints) == (5, 5, 1)
    return path


async def test_archive_moves_records_up_to_a_checkpoint_and_both_halves_verify(
    flows_backend: Flows, tmp_path: Path
) -> None:
    path = await _archived(flows_backend, tmp_path)
    assert [r.seq for r in await flows_backend.store.scan()] == [6, 7, 8, 9, 10]
    assert [c.seq for c in await flows_backend.store.checkpoints()] == [5, 10]  # the cut's checkpoint stays
    alone = await verify(flows_backend.store, checkpoints=check())
    assert alone.ok and alone.archived_through == 5 and alone.records == 5
    together = check()
    together.checkpoints.update((cp.seq, cp) for cp in archived_checkpoints([path]))
    rep = await verify(flows_backend.store, checkpoints=together, archived=archived_rows([path]))
    assert rep.ok and rep.records == 10 and rep.archived_through == 0
    # without the server keys nothing vouches for the start: the archived records are missing
    assert [(p.seq, p.kind) for p in (await verify(flows_backend.store)).problems] == [(1, "missing")]


async def test_records_deleted_after_an_archive_are_still_caught(flows_backend: Flows, tmp_path: Path) -> None:
    await _archived(flows_backend, tmp_path)
    await delete(flows_backend, "=", 6)
    rep = await verify(flows_backend.store, checkpoints=check())
    assert (6, "missing") in [(p.seq, p.kind) for p in rep.problems]


async def test_a_tampered_archive_file_fails(flows_backend: Flows, tmp_path: Path) -> None:
    path = await _archived(flows_backend, tmp_path)
    path.write_text(path.read_text().replace("user3", "mallo"))
    together = check()
    together.checkpoints.update((cp.seq, cp) for cp in archived_checkpoints([path]))
    rep = await verify(flows_backend.store, checkpoints=together, archived=archived_rows([path]))
    assert (4, "edited") in [(p.seq, p.kind) for p in rep.problems]


async def test_nothing_is_archived_without_a_checkpoint_before_the_date(flows_backend: Flows, tmp_path: Path) -> None:
    await fill(flows_backend)
    with (tmp_path / "a.jsonl").open("xb") as out, pytest.raises(ArchiveError, match="no signed checkpoint"):
        await archive(flows_backend.store, T0 + 100, out)
    assert len(await flows_backend.store.scan()) == 10


async def test_archiving_the_whole_chain_leaves_a_verifying_empty_chain(flows_backend: Flows, tmp_path: Path) -> None:
    await fill(flows_backend)
    await checkpointer(flows_backend, now=T0 + 9).maybe_checkpoint(force=True)
    with (tmp_path / "all.jsonl").open("xb") as out:
        assert (await archive(flows_backend.store, T0 + 100, out)).records == 10
    rep = await verify(flows_backend.store, checkpoints=check())
    assert rep.ok and rep.records == 0 and rep.archived_through == 10
    await fill(flows_backend, n=2)  # the chain goes on after the archive
    assert (await verify(flows_backend.store, checkpoints=check())).ok

"""The flow record hash chain: canonical bodies, chained hashes, and verification that names the exact record
an edit, a deletion, a reordering or a truncation broke — on every store kind, tampered with as an attacker
with write access to the database would (plain SQL)."""

from __future__ import annotations

import hashlib
import itertools

import orjson
import pytest

from jarmor.governance.chain import ChainVerifier, parse_anchor, verify
from jarmor.governance.records import GENESIS_HASH, canonical, chain_hash, seal
from jarmor.store.base import FlowEntry
from jarmor.store.flow_memory import MemoryFlowRecordStore

from .conftest import T0, Flows, event

# --- canonical serialization and hashing ----------------------------------------------------------------------


def test_canonical_is_sorted_compact_utf8() -> None:
    assert canonical({"b": 1, "a": {"d": [1, "é"], "c": None}}) == '{"a":{"c":null,"d":[1,"é"]},"b":1}'.encode()


def test_seal_hashes_previous_hash_and_body_with_seq() -> None:
    entry = event(subject="alice").entry()
    body, digest = seal(7, "ab" * 32, entry)
    parsed = orjson.loads(body)
    assert parsed["seq"] == 7 and parsed["subject"] == "alice" and parsed["flow_id"] == "f1" and parsed["v"] == 1
    assert digest == hashlib.sha256(("ab" * 32).encode() + b"\n" + body.encode()).hexdigest()
    assert seal(7, "ab" * 32, entry) == (body, digest)  # deterministic
    assert seal(8, "ab" * 32, entry)[1] != digest and seal(7, "cd" * 32, entry)[1] != digest


def test_payload_leaves_out_empty_members_and_clips_request_data() -> None:
    payload = event(client_id=None, client_claimed="x" * 1000, error_description="y" * 5000).payload()
    assert "client_id" not in payload and "scopes" not in payload and "controls" not in payload
    assert len(payload["client_claimed"]) == 256 and len(payload["error_description"]) == 512


def test_parse_anchor() -> None:
    assert parse_anchor("12:" + "a" * 64) == (12, "a" * 64)
    for bad in ("12", "x:" + "a" * 64, "12:abc", "12:" + "A" * 64):
        with pytest.raises(ValueError):
            parse_anchor(bad)


# --- appending and verifying, on every store ---------------------------------------------------------------------


async def fill(flows: Flows, n: int = 10, batch: int = 4) -> None:
    evs = [event(flow_id=f"f{i // 3}", at=T0 + i, subject=f"user{i}") for i in range(n)]
    for i in range(0, n, batch):
        await flows.store.append([e.entry() for e in evs[i : i + batch]], seal)


async def test_append_chains_batches(flows_backend: Flows) -> None:
    store = flows_backend.store
    assert await store.head() == (0, GENESIS_HASH)
    assert await store.append([], seal) == 0
    await fill(flows_backend)
    rows = await store.scan()
    assert [r.seq for r in rows] == list(range(1, 11))
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert await store.head() == (10, rows[-1].hash)
    rep = await verify(store)
    assert rep.ok and rep.records == 10 and (rep.last_seq, rep.last_hash) == (10, rows[-1].hash)
    assert [r.seq for r in await store.scan(after_seq=7)] == [8, 9, 10]
    assert [r.seq for r in await store.scan(since=T0 + 5, limit=2)] == [6, 7]
    assert [r.seq for r in await store.of_flow("f1")] == [4, 5, 6]
    assert await store.last_seen() == {"c1": T0 + 9}


async def test_for_flows_returns_whole_recent_flows(flows_backend: Flows) -> None:
    store = flows_backend.store
    await fill(flows_backend)  # flows f0..f3 at T0+0..T0+9 (f3 has one record)
    await store.append([event(flow_id="fx", at=T0 + 20, client_id="c2").entry()], seal)
    assert {r.flow_id for r in await store.for_flows(limit=2)} == {"fx", "f3"}
    rows = await store.for_flows(since=T0 + 5)  # f1 has records at T0+3..5: all of them come back
    assert {r.flow_id for r in rows} == {"f1", "f2", "f3", "fx"} and [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert [r.seq for r in rows if r.flow_id == "f1"] == [4, 5, 6]
    assert {r.flow_id for r in await store.for_flows(client_id="c2")} == {"fx"}
    assert await store.for_flows(client_id="nobody") == []


async def test_verification_pages_through_long_chains(flows_backend: Flows, monkeypatch: pytest.MonkeyPatch) -> None:
    from jarmor.governance import chain

    await fill(flows_backend, n=23, batch=7)
    original = chain.stored_rows
    monkeypatch.setattr(chain, "stored_rows", lambda store, page=5000: original(store, page=5))
    rep = await verify(flows_backend.store)
    assert rep.ok and rep.records == 23


# --- tampering -----------------------------------------------------------------------------------------------------


def _mem(flows: Flows) -> MemoryFlowRecordStore:
    assert isinstance(flows.store, MemoryFlowRecordStore)
    return flows.store


async def edit_body(flows: Flows, seq: int, old: str, new: str) -> None:
    if flows.sql is None:
        row = next(r for r in _mem(flows).rows() if r.seq == seq)
        _mem(flows).tamper(seq, body=row.body.replace(old, new))
    else:
        flows.execute(f"UPDATE flow_records SET body = REPLACE(body, '{old}', '{new}') WHERE seq = {seq}")


async def rehash(flows: Flows, seq: int) -> None:
    row = next(r for r in await flows.store.scan() if r.seq == seq)
    digest = chain_hash(row.prev_hash, row.body.encode())
    if flows.sql is None:
        _mem(flows).tamper(seq, hash=digest)
    else:
        flows.execute(f"UPDATE flow_records SET hash = '{digest}' WHERE seq = {seq}")


async def delete(flows: Flows, op: str, value: int) -> None:
    """``DELETE FROM flow_records WHERE seq <op> <value>``."""
    if flows.sql is None:
        test = {"=": int.__eq__, ">": int.__gt__, "<": int.__lt__}[op]
        for row in _mem(flows).rows():
            if test(row.seq, value):
                _mem(flows).tamper(row.seq, delete=True)
    else:
        flows.execute(f"DELETE FROM flow_records WHERE seq {op} {value}")


async def swap(flows: Flows, a: int, b: int) -> None:
    if flows.sql is None:
        _mem(flows).tamper(a, seq=-1)
        _mem(flows).tamper(b, seq=a)
        _mem(flows).tamper(-1, seq=b)
    else:
        flows.execute(f"UPDATE flow_records SET seq = -1 WHERE seq = {a}")
        flows.execute(f"UPDATE flow_records SET seq = {a} WHERE seq = {b}")
        flows.execute(f"UPDATE flow_records SET seq = {b} WHERE seq = -1")


async def set_head(flows: Flows, seq: int, digest: str) -> None:
    if flows.sql is None:
        _mem(flows).set_head(seq, digest)
    else:
        flows.execute(f"UPDATE flow_chain SET seq = {seq}, hash = '{digest}'")


async def problems(flows: Flows, **kw: object) -> list[tuple[int, str]]:
    rep = await verify(flows.store, **kw)  # type: ignore[arg-type]
    assert not rep.ok
    return [(p.seq, p.kind) for p in rep.problems]


async def test_edited_field_is_caught_at_that_record(flows_backend: Flows) -> None:
    await fill(flows_backend)
    await edit_body(flows_backend, 5, '"user4"', '"mallory"')
    rep = await verify(flows_backend.store)
    assert [(p.seq, p.kind) for p in rep.problems] == [(5, "edited")]
    assert rep.problems[0].flow_id == "f1" and "hash" in rep.problems[0].message


async def test_edited_and_rehashed_record_breaks_the_next_link(flows_backend: Flows) -> None:
    await fill(flows_backend)
    await edit_body(flows_backend, 5, '"user4"', '"mallory"')
    await rehash(flows_backend, 5)
    assert await problems(flows_backend) == [(6, "unlinked")]


async def test_edited_indexed_column_is_caught(flows_backend: Flows) -> None:
    await fill(flows_backend)
    if flows_backend.sql is None:
        _mem(flows_backend).tamper(3, outcome="tokens_issued")
    else:
        flows_backend.execute("UPDATE flow_records SET outcome = 'tokens_issued' WHERE seq = 3")
    assert await problems(flows_backend) == [(3, "edited")]


async def test_deleted_record_is_named(flows_backend: Flows) -> None:
    await fill(flows_backend)
    await delete(flows_backend, "=", 4)
    rep = await verify(flows_backend.store)
    assert [(p.seq, p.kind) for p in rep.problems] == [(4, "missing")]
    assert rep.records == 9


async def test_reordered_records_are_named(flows_backend: Flows) -> None:
    await fill(flows_backend)
    await swap(flows_backend, 3, 7)
    found = await problems(flows_backend)
    assert found[0] == (3, "reordered") and (7, "reordered") in found


async def test_truncated_tail_is_caught_by_the_chain_head(flows_backend: Flows) -> None:
    await fill(flows_backend)
    await delete(flows_backend, ">", 7)
    rep = await verify(flows_backend.store)
    assert [(p.seq, p.kind) for p in rep.problems] == [(8, "truncated")]
    assert "8-10" in rep.problems[0].message


async def test_truncated_start_is_caught(flows_backend: Flows) -> None:
    await fill(flows_backend)
    await delete(flows_backend, "<", 3)
    assert await problems(flows_backend) == [(1, "missing")]


async def test_rewritten_head_is_caught_only_by_an_anchor(flows_backend: Flows) -> None:
    await fill(flows_backend)
    rows = await flows_backend.store.scan()
    anchor = (10, rows[9].hash)
    await delete(flows_backend, ">", 7)
    await set_head(flows_backend, 7, rows[6].hash)
    assert (await verify(flows_backend.store)).ok  # a consistent shorter chain...
    assert await problems(flows_backend, anchors=dict([anchor])) == [(10, "anchor")]  # ...but not the anchored one
    assert (await verify(flows_backend.store, anchors={5: rows[4].hash})).ok


async def test_anchor_mismatch_names_the_record() -> None:
    store = MemoryFlowRecordStore()
    await store.append([event(at=T0 + i).entry() for i in range(3)], seal)
    rep = await verify(store, anchors={2: "0" * 64})
    assert [(p.seq, p.kind) for p in rep.problems] == [(2, "anchor")]


def test_verifier_reports_garbage_bodies() -> None:
    from jarmor.store.base import FlowRecordRow

    v = ChainVerifier()
    v.feed(FlowRecordRow(1, T0, "f", "par", "pushed", None, "not json", GENESIS_HASH, "x"))
    rep = v.finish((1, "x"))
    assert [(p.seq, p.kind) for p in rep.problems] == [(1, "edited")]


def test_entry_columns_match_the_body() -> None:
    e = event(client_id="c9", stage="token", outcome="invalid_grant")
    entry = e.entry()
    assert entry == FlowEntry(e.at, "f1", "token", "invalid_grant", "c9", entry.payload)
